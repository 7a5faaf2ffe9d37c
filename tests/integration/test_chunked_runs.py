"""A window larger than Settings.fanout_rows splits into chunks: each its own message (parallel
workers here, parallel run-job calls on Google Cloud), checkpointed, committed together once."""

import itertools
import uuid
from datetime import datetime

import pg8000.native
import pytest

from etlwizard.jobs import get_job
from etlwizard.run.chunks import fan_out
from etlwizard.run.engine import run_job
from etlwizard.run.state import Chunk, ChunkStatus, Run, RunStatus
from etlwizard.stack import Stack
from web.app import create_app


@pytest.fixture
def small_chunks(make_stack):
    stack = make_stack(fanout_rows=250)
    yield stack, create_app(stack=stack).test_client()
    stack.publisher.drain()


@pytest.fixture
def source(postgres_db):
    name = f"big_{uuid.uuid4().hex[:8]}"
    db = pg8000.native.Connection(**postgres_db)
    db.run(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, at timestamptz NOT NULL)")
    db.run(
        f"INSERT INTO {name} SELECT g, 'row ' || g, now() - interval '2 days' + g * interval '1 minute' "
        "FROM generate_series(1, 1000) g"
    )
    yield name, db
    db.run(f"DROP TABLE {name}")
    db.close()


def create_job(client, postgres_db, table, **overrides):
    cid = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db}).get_json()[
        "connection"
    ]["id"]
    body = {
        "name": "big",
        "connection_id": cid,
        "schema_name": "public",
        "table_name": table,
        "selected_columns": ["id", "note", "at"],
        "load_type": "transactional",
        "timestamp_column": "at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": f"c_{uuid.uuid4().hex[:8]}", "table": "big"},
    }
    body.update(overrides)
    response = client.post("/api/etl/jobs/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["job"]


def landed(stack, job):
    return stack.warehouse.count_rows(job["destination"]["dataset"], job["destination"]["table"])


def test_a_large_backfill_fans_out_and_commits_once(small_chunks, source, postgres_db):
    stack, client = small_chunks
    table, _ = source
    job = create_job(client, postgres_db, table)
    started = run_job(stack, job["id"]).to_doc()
    assert started["status"] == "running" and started["split_column"] == "at"
    assert len(started["chunks"]) == 4
    stack.publisher.drain()

    (run,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert (run["status"], run["rows"]) == ("succeeded", 1000)
    assert [c["status"] for c in run["chunks"]] == ["done"] * 4
    assert sum(c["rows"] for c in run["chunks"]) == 1000 and all(c["rows"] > 0 for c in run["chunks"])
    assert landed(stack, job) == 1000
    stored = get_job(stack, job["id"])
    assert stored.pending_run is None and stored.lease is None
    assert datetime.fromisoformat(stored.watermark) == datetime.fromisoformat(run["window"]["upper"])
    tables = [t["table_name"] for t in stack.warehouse.list_tables(job["destination"]["dataset"])]
    assert tables == ["big"]  # the chunks' staging tables are gone

    assert run_job(stack, job["id"]).to_doc()["status"] == "succeeded"  # the next window is small: one piece
    assert landed(stack, job) == 1000


def test_a_failed_chunk_is_where_the_next_run_resumes(small_chunks, source, postgres_db):
    stack, client = small_chunks
    table, db = source
    db.run(f"UPDATE {table} SET at = 'infinity' WHERE id = 600")  # BigQuery has no such timestamp
    job = create_job(client, postgres_db, table, load_type="catalog", timestamp_column=None)
    started = run_job(stack, job["id"]).to_doc()
    assert started["split_column"] == "id" and len(started["chunks"]) == 4
    stack.publisher.drain()

    (run,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert run["status"] == "failed"
    failed = [c for c in run["chunks"] if c["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["lower"] <= 600 < failed[0]["upper"]
    assert run["error"].startswith(f"Chunk {failed[0]['index'] + 1} of 4 failed: ")
    assert run["error"].endswith("The next run resumes at it.")
    assert landed(stack, job) == 0  # nothing committed: readers still see the old (empty) table
    stored = get_job(stack, job["id"])
    assert stored.pending_run == run["id"] and stored.lease is None

    db.run(f"UPDATE {table} SET at = now() WHERE id = 600")
    resumed = run_job(stack, job["id"]).to_doc()
    assert resumed["id"] == run["id"]
    stack.publisher.drain()
    (run,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert (run["status"], run["rows"]) == ("succeeded", 1000)
    assert [c["attempts"] for c in run["chunks"]] == [
        2 if c["index"] == failed[0]["index"] else 1 for c in run["chunks"]
    ]
    assert landed(stack, job) == 1000
    assert get_job(stack, job["id"]).pending_run is None


def test_a_resumed_run_leaves_chunks_still_loading_to_their_workers(settings):
    import json
    from datetime import timedelta, timezone

    published = []

    class Recorder:
        def publish(self, data):
            published.append(json.loads(data)["chunk"])

    stack = Stack(settings, publisher=Recorder())  # publishes nothing: no run handler
    now = datetime.now(timezone.utc)
    run = Run(
        id="r1",
        job_id="j1",
        trigger="manual",
        status=RunStatus.FAILED,
        started_at=now,
        chunks=[
            Chunk(0, 0, 1, ChunkStatus.DONE, attempts=1),
            Chunk(1, 1, 2, ChunkStatus.FAILED, attempts=1),
            Chunk(2, 2, 3, ChunkStatus.LOADING, attempts=1, heartbeat_at=now.isoformat()),
            Chunk(3, 3, 4, ChunkStatus.LOADING, attempts=1, heartbeat_at=(now - timedelta(hours=2)).isoformat()),
            Chunk(4, 4, 5),
        ],
    )
    fan_out(stack, "j1", run)
    assert published == [1, 3, 4]  # 3's worker has been silent longer than a lease: it is gone
    assert stack.store.get("jobs/j1/runs", "r1")["status"] == "running"


@pytest.mark.parametrize(
    "kind, load_type",
    [("postgresql", "transactional"), ("postgresql", "catalog"), ("mysql", "transactional"), ("mysql", "catalog")],
)
def test_a_window_loads_each_row_once_read_in_slices_or_not(
    make_stack, postgres_db, mysql_db, monkeypatch, kind, load_type
):
    """MySQL's bulk reader runs ahead of a slow load, so a run reads its window in slices of about
    chunk_rows rows, which bounds how far: rows sharing a cursor value at a slice's edge land once.
    PostgreSQL's reads only as fast as the run takes its batches: one query, files of chunk_rows."""
    from etlwizard.sources.sql import SqlSource

    stack = make_stack(chunk_rows=100, batch_rows=30)
    client = create_app(stack=stack).test_client()
    name = f"sliced_{uuid.uuid4().hex[:8]}"
    if kind == "postgresql":
        db = pg8000.native.Connection(**postgres_db)
        db.run(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, at timestamptz NOT NULL)")
        db.run(
            f"INSERT INTO {name} SELECT g, 'row ' || g, now() - interval '2 days' + (g / 10) * interval '1 minute' "
            "FROM generate_series(1, 1000) g"
        )  # ten rows on every timestamp
        schema, connection = "public", postgres_db
    else:
        import pymysql

        db = pymysql.connect(password="", autocommit=True, **mysql_db)
        with db.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, at timestamp(6) NOT NULL)")
            cursor.execute(
                f"INSERT INTO {name} SELECT seq, CONCAT('row ', seq), "
                "UTC_TIMESTAMP(6) - INTERVAL 2 DAY + INTERVAL (seq DIV 10) MINUTE FROM seq_1_to_1000"
            )
        schema, connection = mysql_db["database"], mysql_db
    reads = []
    read_arrow = SqlSource.read_arrow

    def spy(self, meta, columns, column, lower, upper, *args):
        reads.append((lower, upper))
        return read_arrow(self, meta, columns, column, lower, upper, *args)

    monkeypatch.setattr(SqlSource, "read_arrow", spy)
    loads = []
    load_parquet = stack.warehouse.load_parquet
    monkeypatch.setattr(stack.warehouse, "load_parquet", lambda *args: loads.append(1) or load_parquet(*args))
    try:
        cid = client.post("/api/connections/", json={"name": "src", "type": kind, **connection}).get_json()[
            "connection"
        ]["id"]
        response = client.post(
            "/api/etl/jobs/",
            json={
                "name": "sliced",
                "connection_id": cid,
                "schema_name": schema,
                "table_name": name,
                "selected_columns": ["id", "note", "at"],
                "load_type": load_type,
                "timestamp_column": "at" if load_type == "transactional" else None,
                "historical_backfill": "all",
                "destination": {"mode": "new", "dataset": f"s_{uuid.uuid4().hex[:8]}", "table": "sliced"},
            },
        )
        assert response.status_code == 201, response.get_json()
        job = response.get_json()["job"]
        run = run_job(stack, job["id"]).to_doc()
        assert (run["status"], run["rows"]) == ("succeeded", 1000)
        if kind == "mysql":
            assert len(reads) >= 8  # about 1000 / 100 slices
            assert all(hi == next_lo for (_, hi), (next_lo, _) in itertools.pairwise(reads))  # edge to edge
        else:
            assert len(reads) == 1
        assert len(loads) >= 8  # files of about chunk_rows rows, one load job each
        dataset = job["destination"]["dataset"]
        (counts,) = stack.warehouse.query(
            f"SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM {stack.warehouse.quoted(dataset, 'sliced')}"
        )
        assert tuple(counts) == (1000, 1000, 1, 1000)
    finally:
        if kind == "postgresql":
            db.run(f"DROP TABLE {name}")
        else:
            with db.cursor() as cursor:
                cursor.execute(f"DROP TABLE {name}")
        db.close()
