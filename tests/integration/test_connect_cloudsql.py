"""A Cloud SQL connection end to end, as a function on Google Cloud runs it: the catalog driver
through the Cloud SQL connector (a recording double here: nothing can reach Google), the bulk reader
through the instance's Unix socket, laid out as Cloud Run mounts /cloudsql (the local servers'
sockets behind it). What the product asks the connector for is asserted; the rows are real."""

import logging
import shutil
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from etlwizard.connections import open_connection
from tests.cloudsql_double import TOKEN, CloudSqlDouble, mount_socket, pg8000_over_socket, pymysql_over_socket
from tests.integration.loading import destination, make_job, run
from web.app import create_app

INSTANCE = "etl-test:europe-west1:orders"


@pytest.fixture
def sockets():
    """A /cloudsql of the test's own, short enough for a socket's path."""
    folder = Path(tempfile.mkdtemp(prefix="cs", dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


def cloudsql_client(make_stack, sockets, double):
    stack = make_stack({"cloudsql": double}, cloudsql_socket_dir=sockets)
    app = create_app(stack=stack)
    app.testing = True
    return stack, app.test_client()


def save(client, db, **fields):
    body = {"name": "orders on Cloud SQL", "via": "cloudsql", "cloudsql_instance": INSTANCE, **fields}
    body |= {"type": db["type"], "database": db["database"], "user": db["user"]}
    response = client.post("/api/connections/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["connection"]


def rows_at_source(pg_sql, table):
    return [
        (i, n, Decimal(a), u.isoformat())
        for i, n, a, u in pg_sql(f"SELECT id, note, amount::text, updated_at FROM {table} ORDER BY id")
    ]


def loaded(client, dataset):
    return [(r["id"], r["note"], Decimal(r["amount"]), r["updated_at"]) for r in destination(client, dataset)]


@pytest.fixture
def events(pg_sql, table):
    pg_sql(
        f"INSERT INTO {table} SELECT g, 'note ' || g, g / 8.0, now() - interval '1 hour' * g "
        "FROM generate_series(1, 500) g"
    )
    return table


def test_a_postgresql_instance_tests_and_runs_through_the_connector_and_its_socket(
    make_stack, sockets, postgres_db, events, pg_sql, dataset, caplog
):
    double = CloudSqlDouble(pg8000_over_socket())
    mount_socket(sockets, INSTANCE, "postgresql")
    stack, client = cloudsql_client(make_stack, sockets, double)
    connection = save(client, {**postgres_db, "type": "postgresql"}, cloudsql_ip_type="private", password="pw")
    assert connection["security"] == "Cloud SQL, private IP"

    tested = client.post(f"/api/connections/{connection['id']}/test/", json={})
    assert tested.status_code == 200, tested.get_json()
    steps = {s["step"]: s["status"] for s in tested.get_json()["steps"]}
    assert steps == {"connector": "ok", "auth": "ok", "catalog": "ok"}
    request = double.requests[0]
    assert (request.instance, request.driver, request.ip_type) == (INSTANCE, "pg8000", "private")
    assert (request.user, request.password, request.db) == (postgres_db["user"], "pw", postgres_db["database"])
    assert request.enable_iam_auth is False

    with open_connection(stack, connection["id"]) as source:  # the bulk reader's way in: the socket
        assert f"host='{sockets / INSTANCE}'" in source.conninfo() and "sslmode='disable'" in source.conninfo()
    job = make_job(client, connection["id"], events, dataset, load_type="catalog", timestamp_column=None)
    with caplog.at_level(logging.INFO, logger="etlwizard.sources.sql"):
        done = run(stack, job["id"])
    assert done["status"] == "succeeded", done
    assert "row path" not in caplog.text
    assert loaded(client, dataset) == rows_at_source(pg_sql, events)
    assert {r.driver for r in double.requests} == {"pg8000"} and not double.token_calls


def test_without_the_socket_a_run_reads_through_the_connector(
    make_stack, sockets, postgres_db, events, pg_sql, dataset, caplog
):
    double = CloudSqlDouble(pg8000_over_socket())  # nothing mounted: a laptop, or a deploy without it
    stack, client = cloudsql_client(make_stack, sockets, double)
    connection = save(client, {**postgres_db, "type": "postgresql"})
    job = make_job(client, connection["id"], events, dataset)
    with caplog.at_level(logging.INFO, logger="etlwizard.sources.sql"):
        done = run(stack, job["id"])
    assert done["status"] == "succeeded", done
    assert "socket is not mounted here" in caplog.text
    assert loaded(client, dataset) == rows_at_source(pg_sql, events)


@pytest.fixture
def iam_user(pg_sql, events):
    """A role named as Cloud SQL names a service account's IAM user; the local server trusts it (and
    ignores the token the bulk reader sends as its password)."""
    name = f"etl-runner-{uuid.uuid4().hex[:6]}@etl-test.iam"
    pg_sql(f'CREATE ROLE "{name}" LOGIN')
    pg_sql(f'GRANT SELECT ON {events} TO "{name}"')
    yield name
    pg_sql(f'REVOKE ALL ON {events} FROM "{name}"')
    pg_sql(f'DROP ROLE "{name}"')


def test_iam_login_sends_no_password_and_the_bulk_reader_a_token(
    make_stack, sockets, postgres_db, events, pg_sql, dataset, iam_user
):
    double = CloudSqlDouble(pg8000_over_socket())
    mount_socket(sockets, INSTANCE, "postgresql")
    stack, client = cloudsql_client(make_stack, sockets, double)
    db = {**postgres_db, "type": "postgresql", "user": iam_user}
    connection = save(client, db, cloudsql_iam=True)
    assert connection["security"] == "Cloud SQL, public IP, IAM login"
    job = make_job(client, connection["id"], events, dataset, load_type="catalog", timestamp_column=None)
    done = run(stack, job["id"])
    assert done["status"] == "succeeded", done
    assert loaded(client, dataset) == rows_at_source(pg_sql, events)
    assert all(r.enable_iam_auth and r.password is None for r in double.requests)
    assert double.requests[0].user == iam_user
    assert double.token_calls >= 1  # the bulk reader's password over the socket
    with open_connection(stack, connection["id"]) as source:
        assert f"password='{TOKEN}'" in source.conninfo()


def test_a_mysql_instance_runs_through_the_connector_and_its_socket(make_stack, sockets, mysql_db, dataset, caplog):
    double = CloudSqlDouble(pymysql_over_socket())
    mount_socket(sockets, INSTANCE, "mysql")
    stack, client = cloudsql_client(make_stack, sockets, double)
    connection = save(client, {**mysql_db, "type": "mysql", "user": "root"})
    tested = client.post(f"/api/connections/{connection['id']}/test/", json={})
    assert tested.status_code == 200, tested.get_json()
    with open_connection(stack, connection["id"]) as source:
        assert "socket=" in source.connectorx_url() and source.bulk_unavailable([]) is None
        meta = source.fetch_table_metadata(mysql_db["database"], "all_types")
        expected = source.count_rows(meta)
    body = {
        "name": "all types",
        "connection_id": connection["id"],
        "schema_name": mysql_db["database"],
        "table_name": "all_types",
        "selected_columns": ["id", "c_varchar"],
        "load_type": "catalog",
        "destination": {"mode": "new", "dataset": dataset, "table": "all_types"},
        "schedule": {"type": "manual"},
    }
    created = client.post("/api/etl/jobs/", json=body)
    assert created.status_code == 201, created.get_json()
    with caplog.at_level(logging.INFO, logger="etlwizard.sources.sql"):
        done = run(stack, created.get_json()["job"]["id"])
    assert done["status"] == "succeeded", done
    assert "row path" not in caplog.text
    assert done["rows"] == expected == len(destination(client, dataset, "all_types"))
    assert {r.driver for r in double.requests} == {"pymysql"}
