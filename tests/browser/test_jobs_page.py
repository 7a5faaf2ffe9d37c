"""The jobs page with hundreds of jobs: 300 jobs created through the API, found by search, filtered
to the failing ones, sorted and paged; a job's own page with its history and verification result."""

import json
import re
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pg8000.native
import pytest
from playwright.sync_api import expect

from etlwizard.errors import EtlError
from etlwizard.job import runs_collection
from tests.integration.loading import run

JOBS = 300


def post(server, path, body):
    request = urllib.request.Request(
        server + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def job_body(connection_id, dataset, i, table="composite_pk"):
    return {
        "name": f"Nightly {i:03} {('orders', 'refunds', 'invoices')[i % 3]}",
        "connection_id": connection_id,
        "schema_name": "public",
        "table_name": table,
        "selected_columns": ["region", "order_no", "amount", "modified_at"],
        "load_type": "transactional",
        "timestamp_column": "modified_at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": f"orders_{i:03}"},
        "schedule": {"type": "daily", "time": "02:30"},
    }


@pytest.fixture
def failing_tables(postgres_db):
    """Two tables the jobs 017 and 230 read, dropped after the jobs are made so their runs fail."""
    db = pg8000.native.Connection(**postgres_db)
    names = {i: f"doomed_{i}_{uuid.uuid4().hex[:6]}" for i in (17, 230)}
    for name in names.values():
        db.run(f"CREATE TABLE {name} (LIKE composite_pk INCLUDING ALL)")
    yield names, lambda: [db.run(f"DROP TABLE IF EXISTS {name}") for name in names.values()]
    for name in names.values():
        db.run(f"DROP TABLE IF EXISTS {name}")
    db.close()


@pytest.fixture
def three_hundred_jobs(server, stack, postgres_db, failing_tables):
    """300 jobs through the wizard's API, 8 requests at a time; two of them failing, and one run of
    job 123 verified as mismatched (stored with the run, as the verification step stores it)."""
    connection = post(server, "/api/connections/", {"name": "Shop DB", "type": "postgresql", **postgres_db})
    dataset = f"p_{uuid.uuid4().hex[:8]}"
    doomed, drop = failing_tables

    def create(i):
        body = job_body(connection["connection"]["id"], dataset, i, doomed.get(i, "composite_pk"))
        return post(server, "/api/etl/jobs/", body)["job"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = list(pool.map(create, range(JOBS)))
    drop()
    for i in doomed:
        with pytest.raises(EtlError):
            run(stack, jobs[i]["id"])

    verified = run(stack, jobs[123]["id"])
    result = {
        "status": "mismatched",
        "buckets": 4,
        "mismatched": [{"bucket": "2024-01-02", "source_rows": 3, "destination_rows": 2}],
        "checked_at": stack.clock().isoformat(),
    }
    delivery = {"channel": "webhook", "target": "hooks.example.com", "ok": True, "attempts": 1, "error": None}
    alert = {
        "kind": "mismatch",
        "at": stack.clock().isoformat(),
        "message": "1 bucket differs",
        "deliveries": [delivery],
    }
    sweep = {"status": "done", "checked_at": stack.clock().isoformat(), "mode": "mark", "deleted": 2, "buckets": 16}
    extras = {"verification": result, "deleted_rows": sweep, "alerts": [alert]}
    stack.store.transact(runs_collection(jobs[123]["id"]), verified["id"], lambda r: {**r, **extras})
    return jobs


def test_300_jobs_searched_filtered_sorted_paged_and_one_opened(page, server, three_hundred_jobs):
    page.goto(server + "/jobs")
    rows = page.locator("#jobs-table tbody tr")
    expect(page.locator("#jobs-count")).to_have_text("Jobs 1 to 50 of 300.")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Nightly 000 orders")
    expect(page.locator("#page-position")).to_have_text("Page 1 of 6")

    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#jobs-count")).to_have_text("Jobs 51 to 100 of 300.")
    expect(rows.first).to_contain_text("Nightly 050 invoices")
    page.get_by_role("button", name="Previous page").click()
    expect(rows.first).to_contain_text("Nightly 000 orders")

    page.get_by_role("button", name="Sort by name, descending").click()
    expect(rows.first).to_contain_text("Nightly 299 invoices")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Job")
    page.get_by_role("button", name="Sort by name", exact=True).click()
    expect(rows.first).to_contain_text("Nightly 000 orders")

    page.get_by_label("Search jobs", exact=True).fill("nightly 123")
    expect(rows).to_have_count(1)
    expect(page.locator("#jobs-count")).to_have_text("1 job matches.")
    expect(page.locator("#jobs-pages")).to_be_hidden()
    page.get_by_label("Search jobs", exact=True).fill("orders_23")  # the destination table
    expect(rows).to_have_count(10)

    page.get_by_label("Search jobs", exact=True).fill("")
    page.get_by_label("Health", exact=True).select_option("failing")
    expect(rows).to_have_count(2)
    expect(page.locator("#jobs-count")).to_have_text("2 jobs match.")
    expect(rows.locator(".health")).to_have_text(["failing", "failing"])
    expect(rows.locator(".health-since")).to_have_text([re.compile(r"^\s*since "), re.compile(r"^\s*since ")])
    expect(rows.locator("th")).to_have_text(["Nightly 017 invoices", "Nightly 230 invoices"])
    assert "health=failing" in page.url  # a reload or a shared link shows the same list

    page.get_by_label("Health", exact=True).select_option("")
    page.get_by_label("Search jobs", exact=True).fill("nightly 123")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".health")).to_have_text("mismatch")
    rows.first.get_by_role("link", name="Nightly 123 orders").click()

    expect(page).to_have_url(re.compile(rf"/jobs/{three_hundred_jobs[123]['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nightly 123 orders")
    expect(page.locator("#job-health .health")).to_have_text("mismatch")
    expect(page.locator("#job-health")).to_contain_text("1 of 4 buckets differ")
    expect(page.locator("#job-settings")).to_contain_text("Shop DB (postgresql): public.composite_pk")
    history = page.locator("#runs-table tbody tr")
    expect(history).to_have_count(1)
    expect(history.first.locator(".run-status")).to_have_text("succeeded")
    expect(history.first.locator(".verification .verdict")).to_have_text("mismatched: 1 of 4 buckets")
    history.first.get_by_text("Buckets that differ").click()
    expect(history.first.locator(".verification li")).to_have_text("2024-01-02: 3 rows at the source, 2 in BigQuery")
    expect(history.first.locator(".deleted-rows")).to_have_text("2 marked")
    expect(history.first.locator(".alerts")).to_have_text("mismatch → webhook hooks.example.com: sent")
    expect(page.locator("#history-chart rect.bar")).to_have_count(1)
    expect(page.locator("#history-chart rect.bar.mismatched")).to_have_count(1)


def test_run_pause_and_delete_on_a_jobs_own_page(page, server, postgres_db):
    connection = post(server, "/api/connections/", {"name": "Shop DB", "type": "postgresql", **postgres_db})
    job = post(server, "/api/etl/jobs/", job_body(connection["connection"]["id"], f"p_{uuid.uuid4().hex[:8]}", 7))[
        "job"
    ]
    page.goto(f"{server}/jobs/{job['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nightly 007 refunds")
    expect(page.locator("#runs-table tbody")).to_have_text("No runs yet: Run now starts one.")

    page.get_by_role("button", name="Run now Nightly 007 refunds").click()
    expect(page.locator("#runs-table tbody tr .run-status")).to_have_text("succeeded")
    expect(page.locator("#history-chart rect.bar")).to_have_count(1)
    expect(page.locator("#job-health .health")).to_have_text("ok")

    page.get_by_role("button", name="Pause Nightly 007 refunds").click()
    expect(page.locator("#job-status")).to_have_text("Nightly 007 refunds paused.")
    expect(page.locator("#job-health .health")).to_have_text("paused")
    expect(page.locator("#job-settings")).to_contain_text("Next runs—")
    page.get_by_role("button", name="Resume Nightly 007 refunds").click()
    expect(page.locator("#job-health .health")).to_have_text("ok")

    page.get_by_role("button", name="Delete Nightly 007 refunds").click()
    page.get_by_role("button", name="Delete job").click()
    expect(page.locator("#job-status")).to_have_text(
        "Nightly 007 refunds deleted; the table was kept. Back to the jobs"
    )
    page.get_by_role("link", name="Back to the jobs").click()
    expect(page.locator("#no-jobs")).to_be_visible()


def test_a_job_page_for_no_job_says_so(page, server):
    page.goto(server + "/jobs/0123456789ab")
    expect(page.locator("#job-status")).to_have_text("job 0123456789ab does not exist Back to the jobs")
    expect(page.locator("#job-body")).to_be_hidden()
    assert page.request.get(server + "/jobs/not-an-id").status == 404


def test_the_job_page_is_a_module_that_leaves_no_globals(page, server):
    page.goto(server + "/jobs/0123456789ab")
    expect(page.locator("script[src]")).to_have_count(1)
    expect(page.locator("script[src]")).to_have_attribute("type", "module")
    page.wait_for_load_state("networkidle")
    leaked = page.evaluate("() => ['api', 'el', 'job', 'runs', 'load', 'drawChart'].filter((name) => name in window)")
    assert leaked == []
