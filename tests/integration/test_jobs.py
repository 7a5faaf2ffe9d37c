"""Jobs through HTTP against real PostgreSQL/MariaDB sources, the BigQuery emulator and the
embedded job store: create (new and existing tables), validation, edit, pause, resume, reconnect,
delete, run now."""

import uuid

import pytest

from tests.integration.loading import orders_job


@pytest.fixture(params=["embedded", "firestore"])
def stack(request, make_stack):
    """Every job route runs on both job stores."""
    if request.param == "embedded":
        return make_stack()
    request.getfixturevalue("firestore_emulator")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from etlwizard.store.firestore import FirestoreStore

    project = f"jobs-{uuid.uuid4().hex[:8]}"
    client = firestore.Client(project=project, credentials=AnonymousCredentials())
    return make_stack(parts={"store": FirestoreStore(project, client)})


@pytest.fixture
def job_body(pg, dataset):
    return lambda **overrides: orders_job(pg, dataset, **overrides)


def create(client, body, status=201):
    response = client.post("/api/etl/jobs/", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_create_transactional_job_makes_the_destination_table(client, job_body, dataset):
    job = create(client, job_body())["job"]
    assert job["state"] == "active" and job["watermark"] is None
    assert job["primary_key"] == ["region", "order_no"]  # the declared key by default
    assert job["cron"] == "30 2 * * *"
    assert job["next_runs"][0].endswith("T02:30:00+01:00") and len(job["next_runs"]) == 3

    table = client.get(f"/api/etl/datasets/{dataset}/tables/orders/").get_json()["table"]
    assert table["columns"] == [
        {"name": "region", "bigquery_type": "STRING", "mode": "REQUIRED"},
        {"name": "order_no", "bigquery_type": "INT64", "mode": "REQUIRED"},
        {"name": "amount", "bigquery_type": "NUMERIC", "mode": "NULLABLE"},
        {"name": "modified_at", "bigquery_type": "DATETIME", "mode": "REQUIRED"},
        {"name": "_etl_source_id", "bigquery_type": "STRING", "mode": "NULLABLE"},
        {"name": "_etl_run_id", "bigquery_type": "STRING", "mode": "NULLABLE"},
        {"name": "_etl_loaded_at", "bigquery_type": "TIMESTAMP", "mode": "NULLABLE"},
    ]
    assert table["partition_field"] == "modified_at"
    assert table["cluster_fields"] == ["region", "order_no"]
    assert table["row_count"] == 0

    assert client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]["name"] == "Orders"
    assert [j["id"] for j in client.get("/api/etl/jobs/").get_json()["jobs"]] == [job["id"]]


def test_catalog_job_has_no_cursor_and_no_partitioning(client, job_body, dataset):
    job = create(client, job_body(load_type="catalog", timestamp_column=None, schedule={"type": "manual"}))["job"]
    assert (job["timestamp_column"], job["historical_start_date"], job["cron"], job["next_runs"]) == (
        None,
        None,
        None,
        [],
    )
    table = client.get(f"/api/etl/datasets/{dataset}/tables/orders/").get_json()["table"]
    assert table["partition_field"] is None


def test_table_name_clash_is_409_and_keeps_the_table(client, job_body, dataset):
    create(client, job_body())
    response = client.post("/api/etl/jobs/", json=job_body(name="Again"))
    assert response.status_code == 409
    assert "already exists" in response.get_json()["message"]
    assert len(client.get("/api/etl/jobs/").get_json()["jobs"]) == 1


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"load_type": "incremental"}, "load_type", "transactional or catalog"),
        ({"timestamp_column": None}, "timestamp_column", "is required for a transactional load"),
        ({"timestamp_column": "amount"}, "timestamp_column", "not a timestamp or date"),
        ({"timestamp_column": "nope"}, "timestamp_column", "'nope' is not in public.composite_pk"),
        ({"selected_columns": ["region", "order_no", "amount"]}, "timestamp_column", "must be one of the selected"),
        ({"selected_columns": ["region", "ghost", "modified_at"]}, "selected_columns", "'ghost' is not in"),
        ({"selected_columns": []}, "selected_columns", "non-empty list"),
        ({"primary_key": ["region", "nope"]}, "primary_key", "'nope' is not in"),
        (
            {"historical_backfill": "custom", "historical_start_date": "2999-01-01"},
            "historical_start_date",
            "in the future",
        ),
        (
            {"historical_backfill": "custom", "historical_start_date": "01/02/2024"},
            "historical_start_date",
            "YYYY-MM-DD",
        ),
        ({"historical_backfill": "last_week"}, "historical_backfill", "must be one of"),
        ({"schedule": {"type": "cron", "cron": "61 * * * *"}}, "schedule.cron", "five-field unix cron"),
        (
            {"schedule": {"type": "daily", "time": "02:30", "timezone": "Mars/Olympus"}},
            "schedule.timezone",
            "not an IANA time zone",
        ),
        ({"schedule": {"type": "weekly", "time": "02:30", "day_of_week": "someday"}}, "schedule.day_of_week", "mon"),
        ({"destination": {"mode": "replace"}}, "destination.mode", "new or existing"),
        ({"destination": {"mode": "new", "table": "bad name; DROP"}}, "destination.table", "BigQuery table name"),
        ({"name": ""}, "name", "is required"),
    ],
)
def test_bad_fields_are_400_naming_the_field(client, job_body, overrides, field, words):
    response = client.post("/api/etl/jobs/", json=job_body(**overrides))
    assert response.status_code == 400
    body = response.get_json()
    assert body["details"][0]["field"] == field
    assert words in body["message"]
    assert client.get("/api/etl/jobs/").get_json()["jobs"] == []


def test_unknown_connection_or_table_is_404(client, job_body):
    assert client.post("/api/etl/jobs/", json=job_body(connection_id="0123456789ab")).status_code == 404
    malformed = client.post("/api/etl/jobs/", json=job_body(connection_id="nope"))
    assert (malformed.status_code, malformed.get_json()["details"][0]["field"]) == (400, "connection_id")
    response = client.post("/api/etl/jobs/", json=job_body(table_name="nope"))
    assert response.status_code == 404
    assert response.get_json()["message"] == "table public.nope does not exist in connection 'pg'"


def test_a_source_column_named_like_the_load_metadata_is_refused(client, job_body, postgres_db):
    import pg8000.native

    name = f"meta_{uuid.uuid4().hex[:8]}"
    db = pg8000.native.Connection(**postgres_db)
    db.run(f"CREATE TABLE {name} (id int PRIMARY KEY, _etl_run_id text, at timestamptz NOT NULL)")
    try:
        response = client.post(
            "/api/etl/jobs/",
            json=job_body(
                table_name=name, selected_columns=["id", "_etl_run_id", "at"], timestamp_column="at", primary_key=["id"]
            ),
        )
        assert response.status_code == 400
        assert response.get_json()["details"][0]["field"] == "selected_columns"
        assert "'_etl_run_id': names starting with _etl_ are kept" in response.get_json()["message"]
        assert client.get("/api/etl/jobs/").get_json()["jobs"] == []
    finally:
        db.run(f"DROP TABLE {name}")
        db.close()


def test_historical_backfill_choices_become_dates(client, job_body):
    from datetime import date, timedelta

    job = create(client, job_body(historical_backfill="last_90_days"))["job"]
    assert job["historical_start_date"] == (date.today() - timedelta(days=90)).isoformat()


def test_existing_destination_compatible(client, job_body, dataset):
    create(client, job_body())
    second = create(
        client, job_body(name="Copy", destination={"mode": "existing", "dataset": dataset, "table": "orders"})
    )
    assert second["job"]["destination"] == {"mode": "existing", "dataset": dataset, "table": "orders"}
    assert second["job"]["compatibility"] == {"compatible": True, "warnings": [], "can_alter": [], "errors": []}


def test_existing_destination_incompatible_is_refused(client, job_body, pg, dataset):
    create(client, job_body())
    body = job_body(
        table_name="unique_key_only",
        selected_columns=["code", "label", "created_at"],
        timestamp_column="created_at",
        primary_key=["code"],
        destination={"mode": "existing", "dataset": dataset, "table": "orders"},
    )
    response = client.post("/api/etl/jobs/", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["message"] == "Schema incompatible"
    assert (
        "Column region (STRING, REQUIRED) is not in the source, and the table requires a value in it."
        in payload["details"]
    )
    assert (
        "Primary key column code is not in the table, so rows cannot be matched to replace them." in payload["details"]
    )
    assert "Timestamp column created_at is not in the table: incremental loads need it there." in payload["details"]
    assert len(client.get("/api/etl/jobs/").get_json()["jobs"]) == 1


def test_existing_destination_missing_columns_are_added_only_when_asked(client, job_body, dataset):
    create(client, job_body(selected_columns=["region", "order_no", "modified_at"]))
    wider = job_body(name="Wider", destination={"mode": "existing", "dataset": dataset, "table": "orders"})
    refused = client.post("/api/etl/jobs/", json=wider)
    assert refused.status_code == 400
    assert "lacks column(s) amount" in refused.get_json()["details"][0]
    wider["destination"]["add_missing_columns"] = True
    job = create(client, wider)["job"]
    assert job["compatibility"]["can_alter"] == [{"name": "amount", "bigquery_type": "NUMERIC", "mode": "NULLABLE"}]
    columns = client.get(f"/api/etl/datasets/{dataset}/tables/orders/").get_json()["table"]["columns"]
    assert {"name": "amount", "bigquery_type": "NUMERIC", "mode": "NULLABLE"} in columns


def test_validate_schema_compatibility_route(client, job_body, dataset):
    create(client, job_body())
    response = client.post(
        "/api/etl/validate-schema-compatibility/",
        json={
            "destination_table": f"{dataset}.orders",
            "source_columns": [
                {"name": "region", "bigquery_type": "STRING", "mode": "REQUIRED"},
                {"name": "order_no", "bigquery_type": "STRING", "mode": "REQUIRED"},
                {"name": "amount", "bigquery_type": "INT64", "mode": "NULLABLE"},
                {"name": "modified_at", "bigquery_type": "DATETIME", "mode": "REQUIRED"},
                {"name": "note", "bigquery_type": "STRING", "mode": "NULLABLE"},
            ],
        },
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "success",
        "compatible": False,
        "warnings": ["Column amount: source INT64 into NUMERIC is a widening conversion: integers become decimals."],
        "can_alter": [{"name": "note", "bigquery_type": "STRING", "mode": "NULLABLE"}],
        "errors": ["Column order_no: source STRING into INT64 is a narrowing conversion: not every value fits."],
    }
    assert (
        client.post(
            "/api/etl/validate-schema-compatibility/",
            json={"source_columns": [], "destination_table": f"{dataset}.orders"},
        ).status_code
        == 400
    )
    missing = client.post(
        "/api/etl/validate-schema-compatibility/",
        json={"source_columns": [{"name": "a", "bigquery_type": "STRING"}], "destination_table": f"{dataset}.nope"},
    )
    assert missing.status_code == 404


def test_dataset_routes_list_and_describe(client, job_body, dataset, stack):
    job = create(client, job_body())["job"]
    client.post(f"/api/etl/jobs/{job['id']}/run/")
    stack.publisher.drain()
    tables = client.get(f"/api/etl/datasets/{dataset}/tables/").get_json()["tables"]
    assert [(t["table_name"], t["row_count"]) for t in tables] == [("orders", 2)]
    described = client.get(f"/api/etl/datasets/{dataset}/tables/orders/?rows=1").get_json()["table"]
    assert described["row_count"] == 2
    assert [(r["region"], r["order_no"]) for r in described["rows"]] == [("eu", 1)]  # key order
    assert client.get(f"/api/etl/datasets/{dataset}/tables/orders/?rows=5000").status_code == 400
    assert client.get(f"/api/etl/datasets/{dataset}/tables/orders/?rows=x").get_json()["details"][0]["field"] == "rows"
    assert client.get(f"/api/etl/datasets/{dataset}/tables/nope/").status_code == 404
    assert client.get("/api/etl/datasets/no_such_dataset/tables/").status_code == 404
    assert client.get("/api/etl/datasets/bad-name!/tables/").status_code == 400


def test_edit_schedule_and_add_a_column(client, job_body, dataset, stack):
    job = create(client, job_body(selected_columns=["region", "order_no", "modified_at"]))["job"]
    response = client.patch(
        f"/api/etl/jobs/{job['id']}/",
        json={
            "schedule": {"type": "weekly", "time": "06:00", "day_of_week": "mon", "timezone": "America/New_York"},
            "selected_columns": ["region", "order_no", "modified_at", "amount"],
        },
    )
    assert response.status_code == 200, response.get_json()
    edited = response.get_json()["job"]
    assert edited["cron"] == "0 6 * * 1"
    assert all(t.endswith("T06:00:00-05:00") for t in edited["next_runs"])
    assert edited["selected_columns"][-1] == "amount"
    assert stack.store.get("schedules", job["id"])["schedule"]["day_of_week"] == "mon"
    columns = client.get(f"/api/etl/datasets/{dataset}/tables/orders/").get_json()["table"]["columns"]
    assert {"name": "amount", "bigquery_type": "NUMERIC", "mode": "NULLABLE"} in columns

    bad = client.patch(f"/api/etl/jobs/{job['id']}/", json={"schedule": {"type": "cron", "cron": "every day"}})
    assert bad.status_code == 400 and bad.get_json()["details"][0]["field"] == "schedule.cron"
    assert client.patch("/api/etl/jobs/nope/", json={"name": "x"}).status_code == 404


def test_pause_and_resume_pause_the_schedule_too(client, job_body, stack):
    job = create(client, job_body())["job"]
    paused = client.post(f"/api/etl/jobs/{job['id']}/pause/").get_json()["job"]
    assert (paused["state"], paused["next_runs"]) == ("paused", [])
    assert stack.store.get("schedules", job["id"])["paused"] is True
    resumed = client.post(f"/api/etl/jobs/{job['id']}/resume/").get_json()["job"]
    assert resumed["state"] == "active" and len(resumed["next_runs"]) == 3
    assert stack.store.get("schedules", job["id"])["paused"] is False


def test_delete_keeps_the_table_unless_asked(client, job_body, dataset, stack):
    keep = create(client, job_body())["job"]
    response = client.delete(f"/api/etl/jobs/{keep['id']}/")
    assert response.get_json() == {"status": "success", "deleted": keep["id"], "table_dropped": False}
    assert stack.store.get("schedules", keep["id"]) is None
    assert client.get(f"/api/etl/jobs/{keep['id']}/").status_code == 404
    assert client.get(f"/api/etl/datasets/{dataset}/tables/orders/").status_code == 200

    drop = create(client, job_body(destination={"mode": "existing", "dataset": dataset, "table": "orders"}))["job"]
    response = client.delete(f"/api/etl/jobs/{drop['id']}/", json={"drop_table": True})
    assert response.get_json()["table_dropped"] is True
    assert client.get(f"/api/etl/datasets/{dataset}/tables/orders/").status_code == 404
    assert client.delete(f"/api/etl/jobs/{drop['id']}/").status_code == 404


def test_reconnect_keeps_destination_and_watermark(client, connect, job_body, postgres_db, stack, dataset):
    job = create(client, job_body())["job"]
    client.post(f"/api/etl/jobs/{job['id']}/run/")
    stack.publisher.drain()
    watermark = client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]["watermark"]
    assert watermark is not None
    rotated = connect("postgresql", postgres_db, "pg rotated")
    response = client.post(f"/api/etl/jobs/{job['id']}/reconnect/", json={"connection_id": rotated})
    assert response.status_code == 200, response.get_json()
    moved = response.get_json()["job"]
    assert (moved["connection_id"], moved["watermark"], moved["source_id"], moved["destination"]) == (
        rotated,
        watermark,
        job["source_id"],
        job["destination"],
    )

    incompatible = client.post(f"/api/etl/jobs/{job['id']}/reconnect/", json={"table_name": "no_pk"})
    assert incompatible.status_code == 400
    assert client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]["table_name"] == "composite_pk"


def test_run_now_loads_rows_and_records_the_run(client, job_body, stack, dataset):
    job = create(client, job_body())["job"]
    response = client.post(f"/api/etl/jobs/{job['id']}/run/")
    assert response.status_code == 202
    stack.publisher.drain()
    runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert [(r["status"], r["rows"], r["trigger"]) for r in runs] == [("succeeded", 2, "manual")]
    assert runs[0]["bytes"] > 0 and runs[0]["window"]["lower"] is None
    assert client.post("/api/etl/jobs/nope/run/").status_code == 404
    assert client.get("/api/etl/jobs/nope/runs/").status_code == 404


def test_a_mariadb_job_end_to_end(client, stack, maria, mysql_db, dataset):
    job = create(
        client,
        {
            "name": "Maria orders",
            "connection_id": maria,
            "schema_name": mysql_db["database"],
            "table_name": "composite_pk",
            "selected_columns": ["region", "order_no", "amount", "modified_at"],
            "load_type": "transactional",
            "timestamp_column": "modified_at",
            "historical_backfill": "custom",
            "historical_start_date": "2024-01-02",
            "destination": {"mode": "new", "dataset": dataset, "table": "maria_orders"},
            "schedule": {"type": "monthly", "time": "03:00", "day_of_month": 31, "timezone": "UTC"},
        },
    )["job"]
    assert job["cron"] == "0 3 28-31 * *"
    assert client.post(f"/api/etl/jobs/{job['id']}/run/").status_code == 202
    stack.publisher.drain()
    (run,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert (run["status"], run["rows"], run["window"]["lower"]) == ("succeeded", 1, "2024-01-02T00:00:00.000000")
    rows = client.get(f"/api/etl/datasets/{dataset}/tables/maria_orders/?rows=10").get_json()["table"]["rows"]
    assert [(r["region"], r["order_no"], r["amount"], r["modified_at"]) for r in rows] == [
        ("us", 2, "20.000000000", "2024-01-02T00:00:00.000000")
    ]
