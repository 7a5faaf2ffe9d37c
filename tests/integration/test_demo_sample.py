"""The demo's PostgreSQL sample shop (web/sample_shop.py), in real demo processes: with no local
PostgreSQL to be had it runs its own, which a job loads from and which stops with the demo (SIGTERM
or SIGKILL); with one, the shop is a database of its own there, and the saved connection follows
the shop when that server goes. A small shop (ETL_SAMPLE_ORDERS) keeps these quick; bin/demo's has a
million orders."""

import signal
import uuid

import pg8000.native
import pytest

from etlwizard.emulator import free_port
from tests.integration.test_demo_process import Demo
from web.sample_shop import SAMPLE_CONNECTION

ORDERS = 20_000
LOCAL = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}  # as tests/conftest.py reaches it


@pytest.fixture
def demos():
    made: list[Demo] = []
    yield made
    for running in made:
        if running.process and running.process.poll() is None:
            running.stop(signal.SIGKILL)


def sample_connection(demo: Demo) -> dict:
    (found,) = [c for c in demo.call("GET", "/api/connections/")["connections"] if c["name"] == SAMPLE_CONNECTION]
    return found


def test_with_no_local_postgresql_the_demo_runs_a_job_on_a_postgresql_of_its_own(tmp_path, demos):
    closed = free_port()  # nothing listens there: as on a laptop without PostgreSQL
    env = {
        "ETL_SAMPLE_POSTGRES": f"postgresql://postgres@127.0.0.1:{closed}/etl_wizard_sample",
        "ETL_SAMPLE_ORDERS": str(ORDERS),
    }
    demos.append(Demo(tmp_path / "data", tmp_path / "demo.log", env).start())
    demo = demos[-1]

    shop = sample_connection(demo)
    assert (shop["host"], shop["database"], shop["tls"]["mode"]) == ("127.0.0.1", "etl_wizard_sample", "disable")
    assert shop["port"] not in (closed, 5432)
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()  # its cluster, in the data directory
    tables = demo.call("GET", f"/api/connections/{shop['id']}/tables/")["tables"]
    assert sorted(t["table_name"] for t in tables if t["schema_name"] == "public") == [
        "customers",
        "order_items",
        "orders",
        "products",
    ]
    preview = demo.call(
        "POST",
        f"/api/connections/{shop['id']}/fetch-table-preview/",
        {"schema_name": "public", "table_name": "orders"},
    )
    types = {c["name"]: c["bigquery_type"] for c in preview["columns"]}
    assert (types["total"], types["details"], types["updated_at"]) == ("NUMERIC", "JSON", "TIMESTAMP")
    assert (preview["total_rows"], preview["recommended_primary_key"]) == (ORDERS, ["order_id"])

    dataset = f"d_{uuid.uuid4().hex[:8]}"
    job = demo.call(
        "POST",
        "/api/etl/jobs/",
        {
            "name": "Sample orders",
            "connection_id": shop["id"],
            "schema_name": "public",
            "table_name": "orders",
            "selected_columns": list(types),
            "load_type": "catalog",
            "primary_key": ["order_id"],
            "destination": {"mode": "new", "dataset": dataset, "table": "orders"},
        },
    )["job"]
    demo.call("POST", f"/api/etl/jobs/{job['id']}/run/")
    done = demo.wait_for_run(job["id"], lambda r: r["status"] not in ("running", "committing"))
    assert (done["status"], done["rows"]) == ("succeeded", ORDERS), done
    assert demo.call("GET", f"/api/etl/datasets/{dataset}/tables/orders/")["table"]["row_count"] == ORDERS

    # SIGTERM: the demo and its PostgreSQL have gone within the 10 s a supervisor gives
    assert demo.children_left()
    assert demo.stop(signal.SIGTERM) < 10
    assert demo.children_left() == []

    # Started again: the same shop, on the same port, not seeded again
    demos.append(Demo(tmp_path / "data", tmp_path / "demo.log", env).start())
    again = demos[-1]
    assert sample_connection(again) == shop
    assert (tmp_path / "demo.log").read_text().count("seeded the sample shop") == 1
    db = pg8000.native.Connection("postgres", host="127.0.0.1", port=shop["port"], database="etl_wizard_sample")
    assert db.run("SELECT count(*) FROM orders") == [[ORDERS]]
    db.close()

    # SIGKILL: the demo cannot stop it, the kernel does (its parent died)
    assert again.stop(signal.SIGKILL) < 10
    assert again.children_left() == []


@pytest.fixture
def local_database():
    """A database name on the local server, dropped after the test (the demo is to create it)."""
    name = f"etl_sample_{uuid.uuid4().hex[:8]}"
    yield name
    admin = pg8000.native.Connection(database="postgres", **LOCAL)
    admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_with_a_local_postgresql_the_sample_is_a_database_there_until_that_server_goes(tmp_path, demos, local_database):
    env = {
        "ETL_SAMPLE_POSTGRES": f"postgresql://postgres@127.0.0.1:5432/{local_database}",
        "ETL_SAMPLE_ORDERS": "1000",
    }
    demos.append(Demo(tmp_path / "data", tmp_path / "demo.log", env).start())
    demo = demos[-1]

    shop = sample_connection(demo)
    assert (shop["host"], shop["port"], shop["database"]) == ("127.0.0.1", 5432, local_database)
    db = pg8000.native.Connection(database=local_database, **LOCAL)
    counts = [db.run(f"SELECT count(*) FROM {t}")[0][0] for t in ("orders", "order_items", "customers", "products")]
    db.close()
    assert counts == [1000, 2000, 100, 1000]  # 1 to 3 lines an order (1 + order_id % 3)
    assert not (tmp_path / "data" / "postgres").exists()  # no server of its own
    assert demo.children_left()  # the emulator only
    assert demo.stop(signal.SIGTERM) < 10

    # That server gone, the next start makes the shop a PostgreSQL of its own: the same connection
    gone = {**env, "ETL_SAMPLE_POSTGRES": f"postgresql://postgres@127.0.0.1:{free_port()}/{local_database}"}
    demos.append(Demo(tmp_path / "data", tmp_path / "demo.log", gone).start())
    moved = sample_connection(demos[-1])
    assert (moved["id"], moved["database"]) == (shop["id"], local_database) and moved["port"] != 5432
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
