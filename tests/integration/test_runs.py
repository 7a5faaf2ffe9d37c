"""The run engine end to end: PostgreSQL/MariaDB sources, the BigQuery emulator, the embedded job
store. Each test owns its source table and destination dataset, and checks what a user would:
the rows in the destination, the run history, the watermark."""

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pymysql
import pytest

from etlwizard.errors import EtlError
from etlwizard.jobs import get_job
from etlwizard.run import stage
from etlwizard.run.engine import run_job
from tests.integration.loading import ago, destination, make_job, run


def test_incremental_runs_load_new_and_changed_rows_once(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1.10, '{ago(60)}'), (2, 'b', 2.20, '{ago(50)}')")
    job = make_job(client, pg, table, dataset)
    first = run(stack, job["id"])
    assert (first["status"], first["rows"]) == ("succeeded", 2)
    watermark = get_job(stack, job["id"]).watermark
    assert datetime.fromisoformat(watermark) == datetime.fromisoformat(first["window"]["upper"])

    # a new row, a changed row (its cursor moves), and a row past the source's clock minus the lag
    pg_sql(f"INSERT INTO {table} VALUES (3, 'c', 3.30, now()), (4, 'later', 4.40, now() + interval '1 hour')")
    pg_sql(f"UPDATE {table} SET note = 'b2', updated_at = now() WHERE id = 2")
    time.sleep(1.5)  # the test stack's lag is one second
    second = run(stack, job["id"])
    assert second["rows"] == 2 and second["window"]["lower"] == first["window"]["upper"]
    assert [(r["id"], r["note"], r["amount"]) for r in destination(client, dataset)] == [
        (1, "a", "1.100000000"),
        (2, "b2", "2.200000000"),
        (3, "c", "3.300000000"),
    ]

    # the same message delivered again: nothing new, nothing doubled
    again = run(stack, job["id"])
    assert again["status"] == "succeeded"
    assert len(destination(client, dataset)) == 3


def test_crash_between_commit_and_watermark_doubles_nothing(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}'), (2, 'b', 2, '{ago(50)}')")
    job = make_job(client, pg, table, dataset)
    run(stack, job["id"])
    # the watermark write was lost: the next run reads the same window again
    stack.store.transact("jobs", job["id"], lambda j: {**j, "watermark": "2000-01-01T00:00:00+00:00"})
    rerun = run(stack, job["id"])
    assert rerun["rows"] == 2
    assert [r["id"] for r in destination(client, dataset)] == [1, 2]
    # with no watermark at all, the job resumes from its rows' MAX(cursor): still nothing doubled
    stack.store.transact("jobs", job["id"], lambda j: {**j, "watermark": None})
    assert run(stack, job["id"])["rows"] == 1
    assert [r["id"] for r in destination(client, dataset)] == [1, 2]


def test_window_replace_without_a_primary_key(client, stack, pg, pg_sql, dataset):
    name = f"log_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {name} (msg text, at timestamp NOT NULL)")
    try:
        pg_sql(f"INSERT INTO {name} VALUES ('x', now() - interval '1 hour'), ('x', now() - interval '1 hour')")
        job = make_job(client, pg, name, dataset, selected_columns=["msg", "at"], timestamp_column="at")
        assert job["primary_key"] == []
        run(stack, job["id"])
        stack.store.transact("jobs", job["id"], lambda j: {**j, "watermark": "2000-01-01T00:00:00"})
        run(stack, job["id"])
        assert [r["msg"] for r in destination(client, dataset)] == ["x", "x"]  # both rows, once each
    finally:
        pg_sql(f"DROP TABLE {name}")


def test_a_held_lease_skips_the_trigger_and_records_it(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    later = (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat()
    stack.store.transact("jobs", job["id"], lambda j: {**j, "lease": {"run_id": "other", "expires_at": later}})
    skipped = run(stack, job["id"])
    assert (skipped["status"], skipped["error"]) == ("skipped", "Another run of this job is in progress.")
    assert destination(client, dataset) == []
    # an expired lease (a crashed run) does not block the job forever
    earlier = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    stack.store.transact("jobs", job["id"], lambda j: {**j, "lease": {"run_id": "other", "expires_at": earlier}})
    assert run(stack, job["id"])["status"] == "succeeded"
    statuses = [r["status"] for r in client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]]
    assert sorted(statuses) == ["skipped", "succeeded"]


def test_two_triggers_at_once_load_each_row_once(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 500) g")
    job = make_job(client, pg, table, dataset)
    for _ in range(3):
        client.post(f"/api/etl/jobs/{job['id']}/run/")
    stack.publisher.drain()
    runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert "succeeded" in {r["status"] for r in runs} and len(runs) == 3
    assert {r["status"] for r in runs} <= {"succeeded", "skipped"}
    counted = client.get(f"/api/etl/datasets/{dataset}/tables/events/").get_json()["table"]["row_count"]
    assert counted == 500


def test_catalog_replaces_only_this_sources_rows(client, stack, pg, pg_sql, table, dataset, postgres_db):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, now()), (2, 'b', 2, now())")
    job = make_job(client, pg, table, dataset, load_type="catalog", timestamp_column=None)
    run(stack, job["id"])
    # a second source (another database: here a second table standing for it) shares the table
    other = f"other_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {other} (LIKE {table} INCLUDING ALL)")
    try:
        pg_sql(f"INSERT INTO {other} VALUES (100, 'eu', 5, now())")
        second = make_job(
            client,
            pg,
            other,
            dataset,
            load_type="catalog",
            timestamp_column=None,
            destination={"mode": "existing", "dataset": dataset, "table": "events"},
        )
        run(stack, second["id"])
        pg_sql(f"DELETE FROM {table} WHERE id = 1")
        pg_sql(f"UPDATE {table} SET note = 'b2'")
        assert run(stack, job["id"])["rows"] == 1
        assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(2, "b2"), (100, "eu")]
        sources = client.get(f"/api/etl/datasets/{dataset}/tables/events/?rows=10").get_json()["table"]["rows"]
        assert {r["_etl_source_id"].rsplit(".", 1)[1] for r in sources} == {table, other}
    finally:
        pg_sql(f"DROP TABLE {other}")


def test_a_job_on_a_table_holding_its_rows_resumes_from_their_max_cursor(client, stack, pg, pg_sql, table, dataset):
    pg_sql(
        f"INSERT INTO {table} VALUES (1, 'a', 1, '2024-01-01T00:00:00.123456+00'), "
        f"(2, 'b', 2, '2024-01-02T00:00:00.654321+00')"
    )
    first = make_job(client, pg, table, dataset)
    run(stack, first["id"])
    client.delete(f"/api/etl/jobs/{first['id']}/")  # the job is gone, its rows stay
    pg_sql(f"INSERT INTO {table} VALUES (3, 'c', 3, '{ago(30)}')")
    second = make_job(
        client, pg, table, dataset, destination={"mode": "existing", "dataset": dataset, "table": "events"}
    )
    resumed = run(stack, second["id"])
    assert datetime.fromisoformat(resumed["window"]["lower"]) == datetime(
        2024, 1, 2, 0, 0, 0, 654321, tzinfo=timezone.utc
    )
    assert resumed["rows"] == 2  # the boundary row again (merged, not doubled) and the new one
    assert [r["id"] for r in destination(client, dataset)] == [1, 2, 3]


def test_two_databases_into_one_table_keep_separate_watermarks(
    client, stack, pg, maria, pg_sql, table, dataset, mysql_db
):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'pg', 1, '{ago(60)}')")
    db = pymysql.connect(password="", autocommit=True, **{k: mysql_db[k] for k in ("host", "port", "user", "database")})
    with db.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, note text, amount decimal(12,2), "
            "updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
        )
        cursor.execute(f"INSERT INTO {table} VALUES (1, 'maria', 1, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)")
    try:
        pg_job = make_job(client, pg, table, dataset)
        my_job = make_job(
            client,
            maria,
            table,
            dataset,
            schema_name=mysql_db["database"],
            destination={"mode": "existing", "dataset": dataset, "table": "events"},
        )
        run(stack, pg_job["id"])
        run(stack, my_job["id"])
        rows = destination(client, dataset)
        assert [(r["id"], r["note"]) for r in rows] == [(1, "maria"), (1, "pg")]  # same key, two sources
        pg_state, my_state = get_job(stack, pg_job["id"]), get_job(stack, my_job["id"])
        assert pg_state.source_id != my_state.source_id
        assert pg_state.watermark is not None and my_state.watermark is not None
        with db.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET note = 'maria2', updated_at = UTC_TIMESTAMP(6)")
        time.sleep(1.5)
        assert run(stack, my_job["id"])["rows"] == 1
        assert get_job(stack, pg_job["id"]).watermark == pg_state.watermark  # untouched
        assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "maria2"), (1, "pg")]
    finally:
        with db.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        db.close()


def test_a_failed_run_is_recorded_and_frees_the_job(client, stack, pg, pg_sql, dataset):
    name = f"gone_{uuid.uuid4().hex[:8]}"
    pg_sql(
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount numeric(12,2), updated_at timestamptz NOT NULL)"
    )
    job = make_job(client, pg, name, dataset)
    pg_sql(f"DROP TABLE {name}")
    with pytest.raises(EtlError):
        run(stack, job["id"])
    (failed,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert failed["status"] == "failed"
    assert failed["error"] == f"table public.{name} does not exist in connection 'pg'"
    stored = get_job(stack, job["id"])
    assert stored.lease is None and stored.watermark is None


@pytest.mark.parametrize(
    "failing, error, detail",
    [
        ("1 / (g - 300)", "connection 'pg': PostgreSQL error 22012:", "division by zero"),  # the server's error
        (
            "CASE WHEN g = 300 THEN pg_terminate_backend(pg_backend_pid())::int END",  # the connection drops
            "connection 'pg': lost the connection to PostgreSQL at",
            "terminating connection",
        ),
    ],
)
def test_a_source_failing_mid_read_fails_the_run_readably(client, stack, pg, pg_sql, dataset, failing, error, detail):
    """The bulk reader's own errors (from ADBC, in the middle of COPY) reach the run history readably,
    and nothing of the half-read table lands."""
    name = f"fails_{uuid.uuid4().hex[:8]}"
    pg_sql(
        f"CREATE VIEW {name} AS SELECT g AS id, {failing} AS n, now() - interval '1 day' AS at "
        "FROM generate_series(1, 100000) g"
    )
    try:
        job = make_job(
            client,
            pg,
            name,
            dataset,
            selected_columns=["id", "n", "at"],
            load_type="catalog",
            timestamp_column=None,
            primary_key=[],
        )  # no key: no statistics query first
        with pytest.raises(EtlError):
            run(stack, job["id"])
        (failed,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
        assert failed["status"] == "failed"
        assert failed["error"].startswith(error) and detail in failed["error"], failed["error"]
        assert client.get(f"/api/etl/datasets/{dataset}/tables/events/").get_json()["table"]["row_count"] == 0
        assert get_job(stack, job["id"]).lease is None
    finally:
        pg_sql(f"DROP VIEW {name}")


def test_a_scheduled_trigger_of_a_paused_job_does_nothing(client, stack, pg, pg_sql, table, dataset):
    job = make_job(client, pg, table, dataset, schedule={"type": "hourly", "time": "5"})
    client.post(f"/api/etl/jobs/{job['id']}/pause/")
    assert run(stack, job["id"], trigger="schedule") is None
    assert client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"] == []


@pytest.mark.parametrize(
    "kind, good, bad, named",
    [
        ("timestamptz", "now() - interval '1 day'", "'infinity'", "infinity"),
        ("date", "current_date", "'0044-03-15 BC'", "a year BC"),
        ("numeric(12,2)", "1.5", "'NaN'", "NaN"),
        ("time", "'12:00'", "'24:00:00'", "24:00:00"),  # BigQuery's TIME ends at 23:59:59.999999
    ],
)
def test_a_value_bigquery_cannot_hold_fails_the_run_readably(
    client, stack, pg, pg_sql, dataset, kind, good, bad, named
):
    name = f"inf_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, at {kind} NOT NULL)")
    try:
        pg_sql(f"INSERT INTO {name} VALUES (1, {good}), (2, {bad})")
        job = make_job(
            client, pg, name, dataset, selected_columns=["id", "at"], load_type="catalog", timestamp_column=None
        )
        with pytest.raises(EtlError):
            run(stack, job["id"])
        (failed,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
        assert failed["status"] == "failed"
        assert failed["error"].startswith(f"connection 'pg': a value of public.{name} has no BigQuery equivalent:")
        assert "column at" in failed["error"] and named in failed["error"]
        assert client.get(f"/api/etl/datasets/{dataset}/tables/events/").get_json()["table"]["row_count"] == 0
    finally:
        pg_sql(f"DROP TABLE {name}")


def test_a_long_run_heartbeats_whatever_it_waits_on(client, make_stack, pg, pg_sql, table, dataset):
    """A run renews its lease every quarter of lease_seconds from a thread of its own: here the
    one load job takes 2 s, longer than the whole lease, and no other trigger may take over."""
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 50) g")
    stack = make_stack(lease_seconds=1)
    job = make_job(client, pg, table, dataset)
    seen, load, other = [], stack.warehouse.load_parquet, []
    put = stack.store.transact

    def watching(collection, doc_id, mutate):
        result = put(collection, doc_id, mutate)
        if collection == "jobs" and result and "lease" in result:
            seen.append(result["lease"]["expires_at"])
        return result

    def slow_load(*args):
        time.sleep(2)
        other.append(run(stack, job["id"]))  # a second trigger while the first still works
        return load(*args)

    stack.store.transact, stack.warehouse.load_parquet = watching, slow_load
    assert run(stack, job["id"])["rows"] == 50
    assert len(seen) >= 5  # taken, then renewed about every 0.25 s
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert [r["status"] for r in other] == ["skipped"]
    assert get_job(stack, job["id"]).lease is None


def test_files_load_several_at_once_and_each_row_lands_once(client, make_stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n' || g, g, now() - interval '1 hour' FROM generate_series(1, 70) g")
    stack = make_stack(chunk_rows=10, batch_rows=10, loads_in_flight=3)
    job = make_job(client, pg, table, dataset)
    load, lock, running, peak = stack.warehouse.load_parquet, threading.Lock(), [0], [0]

    def slow_load(*args):  # as BigQuery's load jobs, which take seconds whatever their size
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        try:
            return load(*args)
        finally:
            with lock:
                running[0] -= 1

    stack.warehouse.load_parquet = slow_load
    assert run(stack, job["id"])["rows"] == 70
    assert peak[0] == 3  # seven files, three loading at a time, never more
    assert [r["id"] for r in destination(client, dataset)] == list(range(1, 71))


def test_a_load_job_failing_mid_run_fails_it_and_lands_nothing(client, make_stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 50) g")
    stack = make_stack(chunk_rows=10, batch_rows=10, loads_in_flight=2)
    job = make_job(client, pg, table, dataset)
    load, calls = stack.warehouse.load_parquet, []

    def vanishing(dataset_id, staging, file):
        calls.append(staging)
        if len(calls) == 3:  # the staging table is dropped under the run, as by a person in the console
            stack.warehouse.drop_table(dataset_id, staging)
        return load(dataset_id, staging, file)

    stack.warehouse.load_parquet = vanishing
    with pytest.raises(EtlError):
        run(stack, job["id"])
    (failed,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert failed["status"] == "failed" and calls[0] in failed["error"], failed
    assert destination(client, dataset) == []
    stored = get_job(stack, job["id"])
    assert stored.lease is None and stored.watermark is None


def test_a_running_run_reports_its_rows_as_it_goes(client, stack, pg, pg_sql, dataset, monkeypatch):
    monkeypatch.setattr(stage, "PROGRESS_SECONDS", 0)  # after every batch, not every 2 s: this run is quick
    name = f"many_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, at timestamptz NOT NULL)")
    try:
        pg_sql(
            f"INSERT INTO {name} SELECT g, repeat('x', 60), now() - interval '1 day' FROM generate_series(1, 300000) g"
        )
        job = make_job(
            client, pg, name, dataset, selected_columns=["id", "note", "at"], load_type="catalog", timestamp_column=None
        )
        reported = []
        put = stack.store.put
        stack.store.put = lambda collection, doc_id, doc: (
            reported.append((doc["status"], doc["rows"])) if collection.endswith("/runs") else None,
            put(collection, doc_id, doc),
        )
        assert run(stack, job["id"])["rows"] == 300_000
        running = [rows for status, rows in reported if status == "running"]
        assert any(0 < rows < 300_000 for rows in running), reported  # what the jobs page shows meanwhile
        assert reported[-1] == ("succeeded", 300_000)
    finally:
        pg_sql(f"DROP TABLE {name}")


def test_a_password_with_url_characters_reaches_the_bulk_reader(client, stack, mysql_db, dataset, caplog):
    """The bulk reader takes a connection URL: the password is escaped in it, and never shows."""
    user, password = f"etl_{uuid.uuid4().hex[:8]}", "p@ss:w/rd%?#&= x"
    admin = pymysql.connect(host=mysql_db["host"], port=mysql_db["port"], user="root", password="", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cursor.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO %s@'%%'", (user,))
    try:
        body = {"name": "escaped", "type": "mysql", **mysql_db, "user": user, "password": password}
        cid = client.post("/api/connections/", json=body).get_json()["connection"]["id"]
        response = client.post(
            "/api/etl/jobs/",
            json={
                "name": "escaped",
                "connection_id": cid,
                "schema_name": mysql_db["database"],
                "table_name": "all_types",
                "selected_columns": ["id", "c_varchar", "c_decimal"],
                "load_type": "catalog",
                "destination": {"mode": "new", "dataset": dataset, "table": "escaped"},
            },
        )
        assert response.status_code == 201, response.get_json()
        run = run_job(stack, response.get_json()["job"]["id"]).to_doc()
        assert (run["status"], run["rows"]) == ("succeeded", 2)
        assert password not in json.dumps(run) and password not in caplog.text
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP USER %s@'%%'", (user,))
        admin.close()
