"""A user creating jobs in the wizard, and working them on the jobs page."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from etlwizard.model import Column


@pytest.fixture
def pg_connection(stack, postgres_db):
    from etlwizard import connections

    return connections.create_connection(stack, {"name": "Shop DB", "type": "postgresql", **postgres_db})


@pytest.fixture
def dataset():
    return f"w_{uuid.uuid4().hex[:8]}"


def next_step(page):
    page.get_by_role("button", name="Next").click()


def choose_table(page, connection_name, table):
    page.get_by_label(re.compile(f"^{re.escape(connection_name)}")).check()
    next_step(page)
    page.get_by_label("Search tables", exact=True).fill(table)
    page.get_by_label(table, exact=False).first.check()
    next_step(page)


def test_transactional_job_through_the_wizard(page, server, pg_connection, dataset, stack):
    page.goto(server + "/")
    expect(page.get_by_role("heading", name="1. Select a connection")).to_be_visible()
    next_step(page)  # nothing chosen yet
    expect(page.locator("[id='error-connection']")).to_have_text("Choose a connection, or add one.")

    page.get_by_label(re.compile("^Shop DB")).check()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connected: PostgreSQL 15")
    next_step(page)

    page.get_by_label("Search tables", exact=True).fill("composite")
    expect(page.locator("#table-list label")).to_have_text(["public.composite_pk"])
    page.get_by_label("public.composite_pk", exact=True).check()
    next_step(page)

    expect(page.locator("#preview-summary")).to_have_text("public.composite_pk: 4 columns, 2 rows.")
    expect(page.locator("#columns-table tbody tr")).to_have_count(4)
    expect(page.locator("#columns-table tbody tr").nth(0)).to_contain_text("PK")
    expect(page.locator("#sample-table tbody tr")).to_have_count(2)
    expect(page.locator("#sample-table tbody tr").nth(0)).to_contain_text("10.50")
    page.get_by_role("button", name="Deselect all").click()
    next_step(page)
    expect(page.locator("[id='error-selected_columns']")).to_have_text("Select at least one column.")
    page.get_by_role("button", name="Select all", exact=True).click()
    next_step(page)

    expect(page.get_by_label("Timestamp column", exact=True)).to_have_value("modified_at")
    page.get_by_label("Historical backfill", exact=True).select_option("custom")
    page.get_by_label("Start date", exact=True).fill("2024-01-02")
    page.get_by_label("Dataset", exact=True).fill(dataset)
    page.get_by_label("Table name", exact=True).fill("orders")
    next_step(page)

    page.get_by_label("Runs", exact=True).select_option("daily")
    page.get_by_label("Time", exact=True).fill("03:15")
    page.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    expect(page.locator("#next-runs")).to_contain_text("Cron 15 3 * * * (Europe/Berlin)")
    page.get_by_label("Job name", exact=True).fill("Orders from the shop")
    expect(page.locator("#summary")).to_contain_text(f"new table {dataset}.orders")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#created")).to_contain_text("Job “Orders from the shop” created.")

    page.get_by_role("link", name="Open the job's page").click()  # the job's own page
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{12}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders from the shop")
    settings = page.locator("#job-settings")
    expect(settings).to_contain_text("Shop DB (postgresql): public.composite_pk")
    expect(settings).to_contain_text(f"{dataset}.orders")
    expect(settings).to_contain_text("daily · 15 3 * * * (Europe/Berlin)")
    expect(page.locator("#runs-table tbody")).to_have_text("No runs yet: Run now starts one.")

    page.get_by_role("button", name="Run now Orders from the shop").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    expect(page.locator("#runs-table tbody tr").first).to_contain_text("succeeded")
    expect(page.locator("#runs-table tbody tr td.num").first).to_have_text("1")  # only modified_at >= 2024-01-02
    expect(page.locator("#history-chart rect.bar")).to_have_count(1)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()  # and on the jobs list
    row = page.locator("tr[data-job='Orders from the shop']")
    expect(row).to_contain_text("Shop DB: public.composite_pk")
    expect(row.locator(".last-run")).to_contain_text("succeeded, 1 rows")


def test_catalog_job_on_an_existing_table_with_a_warning(page, server, pg_connection, dataset, stack):
    # An existing table whose amount column is FLOAT64: loading NUMERIC into it is a widening.
    stack.warehouse.create_table(
        dataset,
        "ledger",
        [
            Column("region", "text", "STRING", False, "REQUIRED"),
            Column("order_no", "integer", "INT64", False, "REQUIRED"),
            Column("amount", "numeric", "FLOAT64", True),
        ],
    )
    page.goto(server + "/")
    choose_table(page, "Shop DB", "public.composite_pk")
    expect(page.locator("#columns-table tbody tr")).to_have_count(4)
    next_step(page)
    page.get_by_label(re.compile("Catalog: replace")).check()
    expect(page.locator("#catalog-options")).to_be_visible()
    page.get_by_label("Dataset", exact=True).fill(dataset)
    page.get_by_label("An existing BigQuery table", exact=True).check()
    page.get_by_label("Existing table", exact=True).select_option("ledger")
    report = page.locator("#compatibility")
    expect(report).to_contain_text("Compatible: this table can take these columns.")
    expect(report).to_contain_text(
        "Column amount: source NUMERIC into FLOAT64 is a widening conversion: decimals lose precision as FLOAT64."
    )
    expect(report).to_contain_text("Add the missing column(s) to the table: modified_at (DATETIME)")
    page.get_by_label(re.compile("Add the missing column")).check()
    next_step(page)
    page.get_by_label("Runs", exact=True).select_option("manual")
    expect(page.locator("#next-runs")).to_have_text("Runs only when you press Run now.")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#created")).to_contain_text("created")
    columns = [c["name"] for c in stack.warehouse.describe_table(dataset, "ledger")["columns"]]
    assert "modified_at" in columns


@pytest.fixture
def table_with_brackets(postgres_db):
    """A source table whose name ends in punctuation: the server's suggested destination name trims
    the trailing underscore that a naive lower-case-and-replace would leave."""
    import pg8000.native

    db = pg8000.native.Connection(**postgres_db)
    db.run('CREATE TABLE "Sales Data"."Returns (EU)" (id integer PRIMARY KEY, returned_on date)')
    yield "Sales Data.Returns (EU)"
    db.run('DROP TABLE "Sales Data"."Returns (EU)"')
    db.close()


@pytest.mark.parametrize(
    "table, suggested", [("Sales Data.Order Items", "order_items"), ("Sales Data.Returns (EU)", "returns_eu")]
)
def test_destination_table_is_prefilled_with_the_servers_suggestion(
    page, server, pg_connection, table_with_brackets, table, suggested
):
    page.goto(server + "/")
    choose_table(page, "Shop DB", table)
    expect(page.locator("#preview-summary")).to_contain_text(f"{table}:")
    next_step(page)
    expect(page.get_by_label("Table name", exact=True)).to_have_value(suggested)


def test_wizard_errors_stay_with_their_field(page, server, pg_connection, dataset):
    page.goto(server + "/")
    # The connection form's "name" and the job's "name" are two fields with two error places.
    page.get_by_text("Add a connection").click()
    page.locator("#new-connection").get_by_label("Name", exact=True).fill("Broken")
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("[id='error-conn-host']")).to_have_text("host: is required")

    choose_table(page, "Shop DB", "public.no_pk")
    next_step(page)
    page.get_by_label("Dataset", exact=True).fill(dataset)
    next_step(page)
    page.get_by_label("Job name", exact=True).fill("")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("[id='error-name']")).to_have_text("name: is required")
    expect(page.get_by_role("heading", name="5. Schedule & review")).to_be_visible()
    expect(page.locator("#created")).to_be_empty()


def test_schema_incompatible_lists_its_details(page, server, pg_connection, dataset, stack):
    # The existing table lacks modified_at; without "Add the missing column(s)" ticked the server refuses.
    stack.warehouse.create_table(
        dataset,
        "ledger",
        [
            Column("region", "text", "STRING", False, "REQUIRED"),
            Column("order_no", "integer", "INT64", False, "REQUIRED"),
            Column("amount", "numeric", "NUMERIC", True),
        ],
    )
    page.goto(server + "/")
    choose_table(page, "Shop DB", "public.composite_pk")
    expect(page.locator("#columns-table tbody tr")).to_have_count(4)
    next_step(page)
    page.get_by_label(re.compile("Catalog: replace")).check()
    page.get_by_label("Dataset", exact=True).fill(dataset)
    page.get_by_label("An existing BigQuery table", exact=True).check()
    page.get_by_label("Existing table", exact=True).select_option("ledger")
    expect(page.locator("#compatibility")).to_contain_text(
        "Add the missing column(s) to the table: modified_at (DATETIME)"
    )
    next_step(page)
    page.get_by_role("button", name="Create job").click()
    error = page.locator("[id='error-form']")
    expect(error).to_contain_text("Schema incompatible")
    expect(error.locator("li")).to_have_text(
        [re.compile(r"^The table lacks column\(s\) modified_at: set destination\.add_missing_columns")]
    )
    expect(page.locator("#created")).to_be_empty()


def test_error_details_of_either_form_read_as_text(page, server):
    # errors.js on its own: a detail is a sentence or a {field, problem} object, and neither may
    # show as "[object Object]"; a detail the message already says is not repeated.
    page.goto(server + "/jobs")
    page.evaluate("""async () => {
        const { showError } = await import("/static/errors.js");
        showError(document.querySelector("#jobs-status"), { message: "Bad request", details: [
            "Column amount is not in the table.", { field: "schedule.cron", problem: "is not a cron expression" },
            { field: null, problem: "Something without a field." }, { code: 7 }] });
        showError(document.querySelector("#jobs-status").appendChild(document.createElement("div")),
            { message: "host: is required", details: [{ field: "host", problem: "is required" }] });
    }""")
    status = page.locator("#jobs-status")
    expect(status.locator("ul.details > li")).to_have_text(
        [
            "Column amount is not in the table.",
            "schedule.cron: is not a cron expression",
            "Something without a field.",
            '{"code":7}',
        ]
    )
    expect(status.locator("div")).to_have_text("host: is required")
    expect(status).not_to_contain_text("[object Object]")


@pytest.mark.parametrize("path", ["/", "/jobs", "/connections"])
def test_pages_are_modules_that_leave_no_globals(page, server, path):
    page.goto(server + path)
    expect(page.locator("script[src]")).to_have_count(1)
    expect(page.locator("script[src]")).to_have_attribute("type", "module")
    page.wait_for_load_state("networkidle")  # the page's modules have run
    leaked = page.evaluate(
        "() => ['api', 'ApiError', '$', '$$', 'el', 'showError', 'state', 'jobs', 'loadConnections']"
        ".filter((name) => name in window)"
    )
    assert leaked == []


def test_invalid_cron_is_rejected_with_its_message(page, server, pg_connection, dataset):
    page.goto(server + "/")
    choose_table(page, "Shop DB", "public.no_pk")
    next_step(page)
    page.get_by_label("Dataset", exact=True).fill(dataset)
    next_step(page)
    page.get_by_label("Runs", exact=True).select_option("cron")
    page.get_by_label(re.compile("^Cron expression")).fill("61 * * * *")
    expect(page.locator("[id='error-schedule']")).to_have_text(
        "schedule.cron: '61 * * * *' is not a five-field unix cron expression "
        "(minute hour day-of-month month day-of-week)"
    )
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("[id='error-schedule']")).to_contain_text("is not a five-field unix cron expression")
    expect(page.locator("#created")).to_be_empty()


def test_edit_pause_resume_delete_on_the_jobs_page(page, server, pg_connection, dataset, stack):
    from etlwizard import jobs

    jobs.create_job(
        stack,
        {
            "name": "Edit me",
            "connection_id": pg_connection["id"],
            "schema_name": "public",
            "table_name": "composite_pk",
            "selected_columns": ["region", "order_no", "modified_at"],
            "load_type": "transactional",
            "timestamp_column": "modified_at",
            "historical_backfill": "all",
            "destination": {"mode": "new", "dataset": dataset, "table": "edited"},
            "schedule": {"type": "hourly", "time": "5"},
        },
    )
    page.goto(server + "/jobs")
    row = page.locator("tr[data-job='Edit me']")
    expect(row).to_contain_text("hourly · 5 * * * * (UTC)")

    row.get_by_role("button", name="Edit Edit me").click()
    dialog = page.locator("#edit-dialog")
    expect(dialog.get_by_label("amount (NUMERIC)", exact=True)).not_to_be_checked()
    dialog.get_by_label("amount (NUMERIC)", exact=True).check()
    dialog.get_by_label("Runs", exact=True).select_option("weekly")
    dialog.get_by_label("Time", exact=True).fill("06:00")
    dialog.get_by_label("Day of the week", exact=True).select_option("fri")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#jobs-status")).to_have_text("Edit me saved.")
    expect(row).to_contain_text("weekly · 0 6 * * 5 (UTC)")
    columns = [c["name"] for c in stack.warehouse.describe_table(dataset, "edited")["columns"]]
    assert "amount" in columns

    row.get_by_role("button", name="Pause Edit me").click()
    expect(row.locator(".state")).to_have_text("paused")
    expect(row).to_contain_text("—")  # no next run while paused
    row.get_by_role("button", name="Resume Edit me").click()
    expect(row.locator(".state")).to_have_text("active")

    row.get_by_role("button", name="Delete Edit me").click()
    expect(page.locator("#delete-text")).to_contain_text(
        f"The table {dataset}.edited and its rows are kept unless you tick the box."
    )
    page.get_by_role("button", name="Delete job").click()
    expect(page.locator("#jobs-status")).to_have_text("Edit me deleted; the table was kept.")
    expect(row).to_have_count(0)
    assert stack.warehouse.exists(dataset, "edited")


def test_keyboard_only_through_the_first_steps(page, server, pg_connection):
    page.goto(server + "/")
    expect(page.get_by_label(re.compile("^Shop DB"))).to_be_visible()
    page.keyboard.press("Tab")  # skip links: brand, then the three nav links
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(page.get_by_label(re.compile("^Shop DB"))).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_label(re.compile("^Shop DB"))).to_be_checked()
    page.get_by_role("button", name="Next").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="2. Choose the source table")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search tables", exact=True)).to_be_focused()
    page.keyboard.type("no_pk")
    expect(page.locator("#table-list label")).to_have_text(["public.no_pk"])  # what the user waits to see
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.get_by_label("public.no_pk", exact=True)).to_be_checked()


def test_connections_page_adds_tests_and_deletes(page, server, postgres_db):
    page.goto(server + "/connections")
    page.get_by_label("Name", exact=True).fill("Warehouse PG")
    page.get_by_label("Host", exact=True).fill(postgres_db["host"])
    page.get_by_label("Database", exact=True).fill(postgres_db["database"])
    page.get_by_label("User", exact=True).fill(postgres_db["user"])
    page.get_by_label("Password", exact=True).fill("not-shown-anywhere")
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("#connections-status")).to_have_text("Warehouse PG saved.")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    row = page.locator("tr[data-connection='Warehouse PG']")
    expect(row).to_contain_text(f"postgres@127.0.0.1:5432/{postgres_db['database']}")
    assert "not-shown-anywhere" not in page.content()
    row.get_by_role("button", name="Test Warehouse PG").click()
    expect(page.locator("#connections-status")).to_contain_text("Warehouse PG: connected (PostgreSQL 15")

    page.get_by_label("Name", exact=True).fill("Broken")
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("#connection-error")).to_have_text("host: is required")

    page.on("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete Warehouse PG").click()
    expect(page.locator("#connections-status")).to_have_text("Warehouse PG deleted.")
    expect(row).to_have_count(0)


def test_reconnect_to_a_table_without_a_selected_column_names_it(page, server, pg_connection, dataset, stack):
    from etlwizard import jobs

    jobs.create_job(
        stack,
        {
            "name": "Move me",
            "connection_id": pg_connection["id"],
            "schema_name": "public",
            "table_name": "composite_pk",
            "selected_columns": ["region", "order_no", "modified_at"],
            "load_type": "transactional",
            "timestamp_column": "modified_at",
            "historical_backfill": "all",
            "destination": {"mode": "new", "dataset": dataset, "table": "moved"},
            "schedule": {"type": "manual"},
        },
    )
    page.goto(server + "/jobs")
    row = page.locator("tr[data-job='Move me']")
    row.get_by_role("button", name="Reconnect Move me").click()
    dialog = page.locator("#reconnect-dialog")
    expect(dialog.get_by_label("Connection", exact=True)).to_have_value(pg_connection["id"])
    dialog.get_by_label("Table", exact=True).fill("no_pk")
    dialog.get_by_role("button", name="Reconnect").click()
    error = page.locator("#reconnect-error")
    expect(error).to_have_text("selected_columns: column 'region' is not in public.no_pk")
    expect(error).not_to_contain_text("[object Object]")
    expect(dialog).to_be_visible()  # still open, for another try
    # The connection reads as everywhere else: name, type and where it points.
    expect(dialog.locator("option:checked")).to_have_text(
        re.compile(r"^Shop DB \(postgresql, postgres@127\.0\.0\.1:5432/")
    )
