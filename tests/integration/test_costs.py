"""What a run costs in BigQuery, and the cheaper commit where it is provably the same (run/costs.py,
run/commit.py): every BigQuery job a run starts is on its document as the API reported it; a catalog
snapshot of a table holding only its source's rows replaces the table by a copy job (atomic for a
reader, other tables untouched, partitioning kept); a shared table, or one holding rows ETL Wizard
did not load, keeps the scoped MERGE."""

import threading
import time
import uuid
from decimal import Decimal

import pytest
from google.cloud import bigquery

from etlwizard.bigquery_client import make_client
from etlwizard.jobs import get_job
from etlwizard.model import Column
from etlwizard.run import commit as commits
from etlwizard.run.costs import by_month
from etlwizard.run.engine import run_job
from etlwizard.run.records import get_run, list_runs
from etlwizard.run.state import LISTED_JOBS, BigQueryUse
from etlwizard.warehouse import JobStats
from tests.integration.loading import ago, destination, make_job, run
from web.app import create_app


def api_says(client, job_id):
    """What BigQuery's API reports for a job (jobs.get), in the run document's terms."""
    job = client.get_job(job_id)
    said = dict.fromkeys(
        ("statement_type", "bytes_processed", "bytes_billed", "slot_ms", "output_rows", "output_bytes")
    )
    if isinstance(job, bigquery.QueryJob):
        said.update(
            kind="query",
            statement_type=job.statement_type,
            bytes_processed=job.total_bytes_processed,
            bytes_billed=job.total_bytes_billed,
            slot_ms=job.slot_millis,
        )
    elif isinstance(job, bigquery.LoadJob):
        said.update(kind="load", output_rows=job.output_rows, output_bytes=job.output_bytes)
    else:
        said.update(kind="copy")
    return {"job_id": job_id, **said}


def total(values):
    reported = [v for v in values if v is not None]
    return sum(reported) if reported else None


def assert_recorded_as_reported(stack, recorded):
    listed = recorded["listed"]
    assert recorded["jobs"] == len(listed) + recorded["unlisted"] and recorded["unlisted"] == 0
    assert len({j["job_id"] for j in listed}) == len(listed)  # each job once
    said = [api_says(stack.warehouse.client, j["job_id"]) for j in listed]
    assert listed == said
    for field, name in (
        ("bytes_processed", "bytes_processed"),
        ("bytes_billed", "bytes_billed"),
        ("slot_ms", "slot_ms"),
    ):
        assert recorded[field] == total(j[name] for j in said)
    kinds = {}
    for job in said:
        kinds[job["kind"]] = kinds.get(job["kind"], 0) + 1
    assert recorded["kinds"] == kinds


def test_every_bigquery_job_of_a_run_is_recorded_as_the_api_reported_it(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n' || g, g, now() - interval '1 hour' FROM generate_series(1, 300) g")
    job = make_job(client, pg, table, dataset)  # verification after the run: its queries are the run's too
    first = run(stack, job["id"])
    recorded = first["bigquery"]
    assert_recorded_as_reported(stack, recorded)
    loads = [j for j in recorded["listed"] if j["kind"] == "load"]
    assert sum(j["output_rows"] for j in loads) == first["rows"] == 300  # the emulator reports loaded rows
    assert recorded["kinds"]["query"] >= 2  # the MERGE and the verification's fingerprints at least
    # the document as stored, and as the run history shows it, say the same
    assert get_run(stack, job["id"], first["id"]).to_doc()["bigquery"] == recorded
    (shown,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert shown["bigquery"] == recorded

    pg_sql(f"UPDATE {table} SET note = 'changed', updated_at = now() WHERE id <= 10")
    time.sleep(1.5)  # past the run lag
    second = run(stack, job["id"])
    assert second["rows"] == 10
    assert_recorded_as_reported(stack, second["bigquery"])
    assert not {j["job_id"] for j in second["bigquery"]["listed"]} & {j["job_id"] for j in recorded["listed"]}
    (month,) = by_month(list_runs(stack, job["id"]))  # the jobs page's per job per month
    assert month["runs"] == 2 and month["jobs"] == recorded["jobs"] + second["bigquery"]["jobs"]
    assert month["month"] == first["started_at"][:7]


def test_a_fanned_out_run_records_the_jobs_of_every_chunk(make_stack, connect, postgres_db, pg_sql, table, dataset):
    stack = make_stack(fanout_rows=250)
    client = create_app(stack=stack).test_client()
    pg_sql(
        f"INSERT INTO {table} SELECT g, 'n' || g, g, now() - interval '2 days' + g * interval '1 minute' "
        "FROM generate_series(1, 1000) g"
    )
    response = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db})
    job = make_job(client, response.get_json()["connection"]["id"], table, dataset)
    started = run_job(stack, job["id"])
    assert len(started.chunks) == 4
    stack.publisher.drain()
    done = get_run(stack, job["id"], started.id).to_doc()
    assert done["status"] == "succeeded"
    recorded = done["bigquery"]
    assert_recorded_as_reported(stack, recorded)
    assert sum(j["output_rows"] for j in recorded["listed"] if j["kind"] == "load") == 1000
    assert recorded["kinds"]["load"] >= 4  # one file at least per chunk, each chunk's call adding its own


@pytest.fixture
def any_size(monkeypatch):
    """Tables of any size replaced by copy where they may be (the emulator reports every table as
    0 bytes, below commit.REPLACE_MIN_BYTES)."""
    monkeypatch.setattr(commits, "REPLACE_MIN_BYTES", 0)


def catalog_job(client, pg, table, dataset, **overrides):
    return make_job(client, pg, table, dataset, load_type="catalog", timestamp_column=None, **overrides)


def kinds(run_doc):
    return run_doc["bigquery"]["kinds"]


def test_a_catalog_snapshot_of_its_own_table_is_a_copy_job_with_the_same_rows(
    any_size, client, stack, pg, pg_sql, table, dataset
):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1.10, '{ago(60)}'), (2, 'b', 2.20, '{ago(50)}')")
    # a partitioned, clustered table made beforehand (as a transactional job would have it)
    columns = [
        Column("id", "integer", "INT64", False),
        Column("note", "text", "STRING", True),
        Column("amount", "numeric(12,2)", "NUMERIC", True),
        Column("updated_at", "timestamptz", "TIMESTAMP", False),
    ]
    stack.warehouse.create_table(dataset, "events", columns, partition_field="updated_at", cluster_fields=["id"])
    job = catalog_job(
        client, pg, table, dataset, destination={"mode": "existing", "dataset": dataset, "table": "events"}
    )
    first = run(stack, job["id"])
    assert first["status"] == "succeeded" and kinds(first).get("copy") == 1
    pg_sql(f"DELETE FROM {table} WHERE id = 1")
    pg_sql(f"UPDATE {table} SET note = 'b2'")
    pg_sql(f"INSERT INTO {table} VALUES (3, 'c', 3.30, '{ago(5)}')")
    second = run(stack, job["id"])
    assert kinds(second).get("copy") == 1
    assert [(r["id"], r["note"], Decimal(r["amount"])) for r in destination(client, dataset)] == [
        (2, "b2", Decimal("2.2")),
        (3, "c", Decimal("3.3")),
    ]
    described = client.get(f"/api/etl/datasets/{dataset}/tables/events/?rows=10").get_json()["table"]
    assert described["partition_field"] == "updated_at" and described["cluster_fields"] == ["id"]
    assert [c["name"] for c in described["columns"]][-3:] == ["_etl_source_id", "_etl_run_id", "_etl_loaded_at"]
    assert {(r["_etl_source_id"].rsplit(".", 1)[1], r["_etl_run_id"]) for r in described["rows"]} == {
        (table, second["id"])
    }
    assert all(r["_etl_loaded_at"] for r in described["rows"])
    # no staging or replacement table left behind
    assert [t["table_name"] for t in client.get(f"/api/etl/datasets/{dataset}/tables/").get_json()["tables"]] == [
        "events"
    ]
    assert stack.warehouse.staging_tables(dataset) == []


def test_a_copy_replace_is_atomic_for_a_reader_and_leaves_other_tables_alone(
    any_size, client, stack, settings, pg, pg_sql, table, dataset
):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n' || g, g, now() FROM generate_series(1, 2000) g")
    job = catalog_job(client, pg, table, dataset)
    # another source's job into its own table of the same dataset
    other = f"other_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {other} (LIKE {table} INCLUDING ALL)")
    try:
        pg_sql(f"INSERT INTO {other} VALUES (100, 'eu', 5, now())")
        neighbour = catalog_job(
            client, pg, other, dataset, destination={"mode": "new", "dataset": dataset, "table": "eu"}
        )
        run(stack, neighbour["id"])
        before = client.get(f"/api/etl/datasets/{dataset}/tables/eu/?rows=10").get_json()["table"]
        assert run(stack, job["id"])["rows"] == 2000

        reader = make_client(settings)
        seen, errors, stop = [], [], threading.Event()
        count = f"SELECT COUNT(*) FROM `{settings.project}.{dataset}.events`"

        def read():
            while not stop.is_set():
                try:
                    seen.append(next(iter(reader.query_and_wait(count)))[0])
                except Exception as e:  # a table missing, even for a moment, is a failure too
                    errors.append(e)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            for _ in range(3):
                pg_sql(f"DELETE FROM {table} WHERE id > 1500")
                assert kinds(run(stack, job["id"])).get("copy") == 1
                pg_sql(f"INSERT INTO {table} SELECT g, 'n' || g, g, now() FROM generate_series(1501, 2000) g")
                assert kinds(run(stack, job["id"])).get("copy") == 1
        finally:
            stop.set()
            thread.join()
        assert not errors
        assert len(seen) > 10 and set(seen) == {1500, 2000}  # read while replacing: one or the other
        assert client.get(f"/api/etl/datasets/{dataset}/tables/eu/?rows=10").get_json()["table"] == before
    finally:
        pg_sql(f"DROP TABLE {other}")


def test_a_shared_table_keeps_the_scoped_merge(any_size, client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, now()), (2, 'b', 2, now())")
    job = catalog_job(client, pg, table, dataset)
    assert kinds(run(stack, job["id"])).get("copy") == 1  # alone in its table so far
    other = f"other_{uuid.uuid4().hex[:8]}"  # a second source (here another table standing for it)
    pg_sql(f"CREATE TABLE {other} (LIKE {table} INCLUDING ALL)")
    try:
        pg_sql(f"INSERT INTO {other} VALUES (100, 'eu', 5, now())")
        second = catalog_job(
            client, pg, other, dataset, destination={"mode": "existing", "dataset": dataset, "table": "events"}
        )
        joined = run(stack, second["id"])
        assert "copy" not in kinds(joined)
        pg_sql(f"UPDATE {table} SET note = 'a2' WHERE id = 1")
        again = run(stack, job["id"])
        assert "copy" not in kinds(again) and kinds(again)["query"] >= 2  # the question, then the MERGE
        assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "a2"), (2, "b"), (100, "eu")]
    finally:
        pg_sql(f"DROP TABLE {other}")


def test_rows_not_loaded_by_etl_wizard_keep_the_merge(any_size, client, stack, pg, pg_sql, table, dataset):
    columns = [Column("id", "integer", "INT64", False), Column("note", "text", "STRING", True)]
    stack.warehouse.create_table(dataset, "events", columns, cluster_fields=["id"])
    stack.warehouse.query(f"INSERT INTO `{stack.warehouse.project}.{dataset}.events` (id, note) VALUES (7, 'by hand')")
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, now())")
    job = catalog_job(
        client,
        pg,
        table,
        dataset,
        selected_columns=["id", "note"],
        destination={"mode": "existing", "dataset": dataset, "table": "events"},
    )
    done = run(stack, job["id"])
    assert "copy" not in kinds(done)
    assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "a"), (7, "by hand")]


def test_a_replace_gives_way_to_a_merge_writing_the_table_and_a_merge_waits_for_a_replace(
    client, stack, pg, pg_sql, table, dataset
):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, now())")
    job = get_job(stack, catalog_job(client, pg, table, dataset)["id"])
    # another job's MERGE into the same table is running: the replace does not claim it
    with commits.merging(stack, job, "run-a"), commits.replacing(stack, job, "run-b") as claimed:
        assert not claimed
    order = []
    with commits.replacing(stack, job, "run-b") as claimed:
        assert claimed
        waiting = threading.Thread(target=lambda: _merge_then(stack, job, order))
        waiting.start()
        waiting.join(timeout=1)
        assert waiting.is_alive()  # the MERGE waits for the replace's copy to end
        order.append("replaced")
    waiting.join(timeout=10)
    assert order == ["replaced", "merged"]


def _merge_then(stack, job, order):
    with commits.merging(stack, job, "run-c"):
        order.append("merged")


def merge_sql(stack, run_doc):
    """The SQL of the run's MERGE, as BigQuery has it (jobs.get)."""
    (merge,) = [j for j in run_doc["bigquery"]["listed"] if j["statement_type"] == "MERGE"]
    return stack.warehouse.client.get_job(merge["job_id"]).query


def test_a_merge_stays_within_the_window_only_where_no_row_moved_into_it(
    any_size, client, stack, pg, pg_sql, table, dataset
):
    """A MERGE matching only the partitions from the window's on would insert again a key whose
    old copy lies before the window (its cursor moved on at the source). Where none did (appended
    rows) it does; where one did, the whole table is merged: every key is in the table once."""
    pg_sql(f"INSERT INTO {table} VALUES (1, 'old', 1, '{ago(60 * 24 * 3)}'), (2, 'b', 2, '{ago(60 * 24 * 2)}')")
    job = make_job(client, pg, table, dataset)  # a new table: partitioned on updated_at
    first = run(stack, job["id"])
    assert "@lower" not in merge_sql(stack, first)  # the first window is all history

    pg_sql(f"INSERT INTO {table} VALUES (3, 'c', 3, now())")  # appended: no row moved
    time.sleep(1.5)  # past the run lag
    appended = run(stack, job["id"])
    assert appended["rows"] == 1 and "T.`updated_at` >= @lower" in merge_sql(stack, appended)
    assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "old"), (2, "b"), (3, "c")]

    # row 1 updated: its cursor moves from three days ago into the window; its copy stays behind
    pg_sql(f"UPDATE {table} SET note = 'new', updated_at = now() WHERE id = 1")
    time.sleep(1.5)
    moved = run(stack, job["id"])
    assert moved["rows"] == 1 and "@lower" not in merge_sql(stack, moved)
    assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "new"), (2, "b"), (3, "c")]


def test_by_default_an_updated_row_is_upserted_once(client, stack, pg, pg_sql, table, dataset):
    """The emulator reports 0 bytes: below REPLACE_MIN_BYTES the whole table is merged, no question."""
    pg_sql(f"INSERT INTO {table} VALUES (1, 'old', 1, '{ago(60 * 24 * 3)}'), (2, 'b', 2, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    run(stack, job["id"])
    pg_sql(f"UPDATE {table} SET note = 'new', updated_at = now() WHERE id = 1")
    time.sleep(1.5)  # past the run lag
    done = run(stack, job["id"])
    assert done["rows"] == 1 and "@lower" not in merge_sql(stack, done)
    assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "new"), (2, "b")]


def test_a_small_table_is_merged(client, stack, pg, pg_sql, table, dataset):
    """Below commit.REPLACE_MIN_BYTES the MERGE bills less than the replace's question and INSERT
    (BigQuery bills every query at least 10 MB): the emulator's tables all report 0 bytes."""
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, now())")
    done = run(stack, catalog_job(client, pg, table, dataset)["id"])
    assert done["bigquery"]["kinds"] == {"load": 1, "query": 2}  # the MERGE, and the verification
    assert [(r["id"], r["note"]) for r in destination(client, dataset)] == [(1, "a")]


def test_a_runs_document_lists_a_bounded_number_of_jobs_loads_making_way_first():
    loads = [JobStats("load", f"l{i}", output_rows=10) for i in range(LISTED_JOBS)]
    queries = [JobStats("query", f"q{i}", "SELECT", 100, 10 * 2**20, 5) for i in range(3)]
    use = BigQueryUse().plus(loads).plus(queries).plus([JobStats("query", "merge", "MERGE", 7, None, None)])
    doc = use.to_doc()
    assert (doc["jobs"], doc["unlisted"], len(doc["listed"])) == (LISTED_JOBS + 4, 4, LISTED_JOBS)
    assert [j["job_id"] for j in doc["listed"]][-4:] == ["q0", "q1", "q2", "merge"]  # every query kept
    assert doc["kinds"] == {"load": LISTED_JOBS, "query": 4}
    assert (doc["bytes_processed"], doc["bytes_billed"], doc["slot_ms"]) == (307, 30 * 2**20, 15)
    assert BigQueryUse.from_doc(doc) == use
