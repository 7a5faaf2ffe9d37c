"""Catalog connections are pooled per saved connection: never more than ETL_POOL_SIZE at once
however many previews run, a request finding them all busy gets a readable 503 after the connect
timeout, a connection the server ended is discarded, and a run's long read holds none of them.

Each test counts the wizard's backends (application_name 'etl-wizard') in a database of its own,
so no other test's connections are counted."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pg8000.native
import pymysql
import pytest

from etlwizard import connections
from web.app import create_app

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
COLUMNS = 30


@pytest.fixture
def wide_db(throwaway_postgres):
    """A throwaway database holding `wide`, a 30-column table of 1,000 rows."""
    columns = ", ".join(f"c{i:02d} text" for i in range(1, COLUMNS))
    values = ", ".join(f"'v{i}-' || g" for i in range(1, COLUMNS))
    return throwaway_postgres(
        "etl_pool",
        f"CREATE TABLE wide (id bigint PRIMARY KEY, {columns})",
        f"INSERT INTO wide SELECT g, {values} FROM generate_series(1, 1000) g",
    )


@pytest.fixture
def backends(wide_db):
    """backends() -> the pids of the wizard's connections to wide_db, as pg_stat_activity lists them."""
    admin = pg8000.native.Connection(database="postgres", **POSTGRES)

    def pids(state=None):
        rows = admin.run(
            "SELECT pid FROM pg_stat_activity WHERE datname = :db AND application_name = 'etl-wizard'"
            " AND (CAST(:state AS text) IS NULL OR state = :state)",
            db=wide_db["database"],
            state=state,
        )
        return sorted(pid for (pid,) in rows)

    pids.admin = admin
    yield pids
    admin.close()


def wizard(stack, db, name="wide"):
    """A client of the wizard over this stack, and a saved connection to db."""
    client = create_app(stack=stack).test_client()
    response = client.post("/api/connections/", json={"name": name, "type": "postgresql", **db})
    assert response.status_code == 201, response.get_json()
    return client, response.get_json()["connection"]["id"]


def preview(client, connection_id, schema="public", table="wide"):
    return client.post(
        f"/api/connections/{connection_id}/fetch-table-preview/", json={"schema_name": schema, "table_name": table}
    )


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_concurrent_previews_never_open_more_connections_than_the_pool(make_stack, wide_db, backends):
    client, connection_id = wizard(make_stack(pool_size=3), wide_db)
    seen = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            seen.append(len(backends()))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=24) as previews:
            answers = list(previews.map(lambda _: preview(client, connection_id), range(72)))
    finally:
        done.set()
        sampler.join()
    assert [a.status_code for a in answers] == [200] * 72
    assert all(len(a.get_json()["columns"]) == COLUMNS for a in answers)
    assert 1 <= max(seen) <= 3, max(seen)
    assert len(backends()) <= 3  # kept open for the next previews, still within the pool


def test_one_connection_serves_preview_after_preview_and_a_server_error_keeps_it(make_stack, wide_db, backends):
    client, connection_id = wizard(make_stack(), wide_db)
    for _ in range(5):
        assert preview(client, connection_id).status_code == 200
    first = backends()
    assert len(first) == 1
    assert preview(client, connection_id, table="no_such_table").status_code == 404
    assert client.post(f"/api/connections/{connection_id}/test/").status_code == 200
    assert backends() == first


def test_a_connection_the_server_ended_is_discarded_and_the_next_preview_works(make_stack, wide_db, backends):
    client, connection_id = wizard(make_stack(), wide_db)
    assert preview(client, connection_id).status_code == 200
    (killed,) = backends()
    assert backends.admin.run("SELECT pg_terminate_backend(:pid)", pid=killed) == [[True]]
    wait_for(lambda: killed not in backends())

    response = preview(client, connection_id)
    assert response.status_code == 200, response.get_json()
    (fresh,) = backends()
    assert fresh != killed


def test_connections_a_burst_opened_close_once_idle_for_a_while(make_stack, wide_db, backends, monkeypatch):
    from etlwizard.sources import pool

    monkeypatch.setattr(pool, "IDLE_SECONDS", 0.3)
    stack = make_stack(pool_size=3)
    client, connection_id = wizard(stack, wide_db)
    with connections.open_connection(stack, connection_id) as source:
        burst = [source._pool.take(source._open_pooled) for _ in range(3)]  # three statements at once
        for pooled in burst:
            source._pool.give(pooled, healthy=True)
    assert len(backends()) == 3
    time.sleep(0.4)
    assert preview(client, connection_id).status_code == 200
    wait_for(lambda: len(backends()) == 1)


def test_all_connections_busy_is_a_readable_503_after_the_connect_timeout(make_stack, wide_db, backends):
    stack = make_stack(pool_size=1, connect_timeout=0.5)
    client, connection_id = wizard(stack, wide_db)
    source = connections.open_connection(stack, connection_id)
    holder = threading.Thread(target=source.query, args=("SELECT pg_sleep(2)",))
    holder.start()
    try:
        wait_for(lambda: len(backends(state="active")) == 1)
        started = time.monotonic()
        response = preview(client, connection_id)
        waited = time.monotonic() - started
    finally:
        holder.join()
        source.close()
    assert response.status_code == 503
    assert response.get_json()["message"] == (
        "connection 'wide': all 1 connections to the database stayed busy for 0.5 s; try again in a moment"
    )
    assert 0.5 <= waited < 1.5
    assert preview(client, connection_id).status_code == 200  # free again
    assert len(backends()) == 1


def test_a_runs_long_read_holds_no_pooled_connection(make_stack, wide_db, backends):
    """A run reads for minutes on a connection of its own; its catalog queries borrow one briefly."""
    stack = make_stack(pool_size=1, connect_timeout=0.5)
    client, connection_id = wizard(stack, wide_db)
    with connections.open_connection(stack, connection_id) as source:
        meta = source.fetch_table_metadata("public", "wide")
        rows = source.read_batches(meta, meta.columns, None, None, None, 100)  # the row path's cursor
        assert len(next(rows)) == 100  # a read in progress
        assert preview(client, connection_id).status_code == 200
        assert len(backends()) == 2  # the read's own connection and the pooled one
        rows.close()
    assert len(backends()) == 1


def test_a_runs_window_statistics_need_no_pooled_connection(make_stack, wide_db, backends):
    """A run's statement over a whole window may take minutes: it runs beside the pool, not in it."""
    stack = make_stack(pool_size=1, connect_timeout=0.5)
    _, connection_id = wizard(stack, wide_db)
    with connections.open_connection(stack, connection_id) as source:
        meta = source.fetch_table_metadata("public", "wide")
        id_column = next(c for c in meta.columns if c.name == "id")
        holder = threading.Thread(target=source.query, args=("SELECT pg_sleep(1.5)",))
        holder.start()
        try:
            wait_for(lambda: len(backends(state="active")) == 1)  # the pool's only connection is busy
            assert source.window_stats(meta, id_column, None, None) == (1, 1000, 1000)
        finally:
            holder.join()
    assert len(backends()) == 1  # the statistics' connection closed with its statement


def test_deleting_a_connection_closes_its_pooled_connections(make_stack, wide_db, backends):
    client, connection_id = wizard(make_stack(), wide_db)
    assert preview(client, connection_id).status_code == 200
    assert len(backends()) == 1
    assert client.delete(f"/api/connections/{connection_id}/").status_code == 200
    wait_for(lambda: backends() == [])


def test_a_mysql_connection_the_server_killed_is_discarded(client, maria, mysql_db):
    assert preview(client, maria, mysql_db["database"], "all_types").status_code == 200
    admin = pymysql.connect(password="", autocommit=True, **{k: v for k, v in mysql_db.items() if k != "database"})
    try:
        with admin.cursor() as cursor:
            mine = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()"
            cursor.execute(mine, (mysql_db["database"],))
            killed = [pid for (pid,) in cursor.fetchall()]
            assert killed
            for pid in killed:
                cursor.execute(f"KILL {int(pid)}")

            def gone():
                cursor.execute(mine, (mysql_db["database"],))
                return not {pid for (pid,) in cursor.fetchall()} & set(killed)

            wait_for(gone)
    finally:
        admin.close()
    response = preview(client, maria, mysql_db["database"], "all_types")
    assert response.status_code == 200, response.get_json()
