"""Connections through HTTP: create, list, test, delete; bad input; unreachable and refusing
servers; the password kept out of every response, log line and stored document."""

import json
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pymysql
import pytest

from etlwizard.reach.options import Credentials

PASSWORD = "Pa55-w0rd;DROP'\"-9f3c"


@pytest.fixture(scope="module")
def mysql_user(mysql_db):
    """A MariaDB account with a real password (root has none here)."""
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS 'etl_wizard_test'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        cursor.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO 'etl_wizard_test'@'%'")
        cursor.execute("CREATE USER IF NOT EXISTS 'etl_wizard_test'@'localhost' IDENTIFIED BY %s", (PASSWORD,))
        cursor.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO 'etl_wizard_test'@'localhost'")
    yield {**mysql_db, "user": "etl_wizard_test"}
    with admin.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS 'etl_wizard_test'@'%'")
        cursor.execute("DROP USER IF EXISTS 'etl_wizard_test'@'localhost'")
    admin.close()


def create(client, **fields):
    return client.post("/api/connections/", json=fields)


def test_create_list_test_delete(client, postgres_db):
    response = create(client, name="Warehouse PG", type="postgresql", **postgres_db, password="")
    assert response.status_code == 201
    connection = response.get_json()["connection"]
    assert {k: connection[k] for k in ("name", "type", "host", "port", "database", "user")} == {
        "name": "Warehouse PG",
        "type": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": postgres_db["database"],
        "user": "postgres",
    }
    assert "password" not in connection

    listed = client.get("/api/connections/").get_json()["connections"]
    assert [c["id"] for c in listed] == [connection["id"]]

    tested = client.post(f"/api/connections/{connection['id']}/test/")
    assert tested.status_code == 200
    assert tested.get_json()["server_version"].startswith("PostgreSQL 15")

    assert client.delete(f"/api/connections/{connection['id']}/").status_code == 200
    assert client.get("/api/connections/").get_json()["connections"] == []
    assert client.post(f"/api/connections/{connection['id']}/test/").status_code == 404


def test_password_never_leaves_the_secret_store(client, stack, settings, mysql_user, caplog):
    caplog.set_level(logging.DEBUG)
    response = create(client, name="Maria", type="mysql", **mysql_user, password=PASSWORD)
    assert response.status_code == 201
    cid = response.get_json()["connection"]["id"]
    bodies = [response.get_data(as_text=True)]
    bodies.append(client.get("/api/connections/").get_data(as_text=True))
    tested = client.post(f"/api/connections/{cid}/test/")
    assert tested.status_code == 200, tested.get_json()
    bodies.append(tested.get_data(as_text=True))
    preview = client.post(
        f"/api/connections/{cid}/fetch-table-preview/",
        json={"schema_name": mysql_user["database"], "table_name": "composite_pk"},
    )
    assert preview.status_code == 200 and preview.get_json()["total_rows"] == 2
    bodies.append(preview.get_data(as_text=True))
    bodies.append(
        client.post(
            f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": "nope", "table_name": "nope"}
        ).get_data(as_text=True)
    )

    stored = json.dumps(stack.store.list("connections"))
    escaped = json.dumps(PASSWORD)[1:-1]
    for text in bodies + [stored, caplog.text]:
        assert PASSWORD not in text and escaped not in text
    secrets_file = settings.data_dir / "secrets.json"
    (kept,) = json.loads(secrets_file.read_text()).values()
    assert Credentials.load(kept).password == PASSWORD
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    assert not str(secrets_file).startswith(str(Path(__file__).parents[2]))  # outside the repository

    client.delete(f"/api/connections/{cid}/")
    assert json.loads(secrets_file.read_text()) == {}


def test_wrong_password_is_a_clear_auth_error(client, mysql_user, caplog):
    cid = create(client, name="Maria", type="mysql", **mysql_user, password="not-it").get_json()["connection"]["id"]
    response = client.post(f"/api/connections/{cid}/test/")
    assert response.status_code == 401
    message = response.get_json()["message"]
    assert message.startswith("connection 'Maria': MySQL refused user 'etl_wizard_test': Access denied")
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_postgres_role_is_an_auth_error(client, postgres_db):
    cid = create(client, name="PG", type="postgresql", **{**postgres_db, "user": "no_such_role"}).get_json()[
        "connection"
    ]["id"]
    response = client.post(f"/api/connections/{cid}/test/")
    assert response.status_code == 401
    assert 'role "no_such_role" does not exist' in response.get_json()["message"]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_refused_port_is_502_naming_the_connection(client, kind):
    port = closed_port()
    cid = create(client, name="Gone", type=kind, host="127.0.0.1", port=port, database="x", user="u").get_json()[
        "connection"
    ]["id"]
    response = client.post(f"/api/connections/{cid}/test/")
    assert response.status_code == 502
    assert response.get_json()["message"].startswith("connection 'Gone': cannot reach")
    assert f"127.0.0.1:{port}" in response.get_json()["message"]


@pytest.fixture
def silent_server():
    """A port that accepts TCP connections and then never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for s in accepted:
        s.close()
    server.close()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_silent_server_is_502_within_seconds(client, kind, silent_server):
    cid = create(
        client, name="Hung", type=kind, host="127.0.0.1", port=silent_server, database="x", user="u"
    ).get_json()["connection"]["id"]
    started = time.monotonic()
    response = client.post(f"/api/connections/{cid}/test/")
    elapsed = time.monotonic() - started
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["message"].startswith("connection 'Hung':")
    assert elapsed < 10


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "postgresql", "host": "h", "database": "d", "user": "u"}, "name"),
        ({"name": "x", "type": "oracle"}, "type"),
        ({"name": "x", "type": "postgresql", "database": "d", "user": "u"}, "host"),
        ({"name": "x", "type": "postgresql", "host": "h; rm -rf /", "database": "d", "user": "u"}, "host"),
        ({"name": "x", "type": "mysql", "host": "h", "port": 70000, "database": "d", "user": "u"}, "port"),
        ({"name": "x", "type": "mysql", "host": "h", "port": "3306x", "database": "d", "user": "u"}, "port"),
        ({"name": "x", "type": "mysql", "host": "h", "user": "u"}, "database"),
        ({"name": "x", "type": "mysql", "host": "h", "database": "d"}, "user"),
        ({"name": "x", "type": "postgresql", "host": "h", "database": "d", "user": "u", "password": 5}, "password"),
        ({"name": "x", "type": "bigquery"}, "project"),
        ({"name": "x", "type": "bigquery", "project": "Not A Project"}, "project"),
        ([1, 2], "body"),
    ],
)
def test_bad_fields_are_400_naming_the_field(client, body, field):
    response = client.post("/api/connections/", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["status"] == "error"
    assert payload["details"][0]["field"] == field
    assert payload["message"].startswith(f"{field}: ")
    assert client.get("/api/connections/").get_json()["connections"] == []


def test_a_body_that_is_not_a_json_object_is_400(client):
    for data in ('"name"', "null", "{not json"):
        response = client.post("/api/connections/", data=data, content_type="application/json")
        assert response.status_code == 400 and response.get_json()["details"][0]["field"] == "body", data


def test_unknown_connection_is_404_everywhere(client):
    for method, path in [
        ("post", "/api/connections/nope/test/"),
        ("get", "/api/connections/nope/tables/"),
        ("delete", "/api/connections/nope/"),
        ("post", "/api/connections/nope/fetch-table-preview/"),
    ]:
        response = getattr(client, method)(path, json={"schema_name": "public", "table_name": "t"})
        assert response.status_code == 404, path
        assert response.get_json() == {"status": "error", "message": "connection nope does not exist", "details": []}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_injection_in_identifiers_executes_nothing(client, postgres_db, mysql_db, kind):
    db = postgres_db if kind == "postgresql" else mysql_db
    schema = "public" if kind == "postgresql" else mysql_db["database"]
    cid = create(client, name="src", type=kind, **db).get_json()["connection"]["id"]
    for table in [
        "empty_table; DROP TABLE no_pk",
        'empty_table"; DROP TABLE no_pk; --',
        "empty_table`; DROP TABLE no_pk; --",
        "no_pk' OR '1'='1",
        "empty_table /* */",
    ]:
        response = client.post(
            f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": schema, "table_name": table}
        )
        assert response.status_code == 404, table
        assert response.get_json()["message"] == f"table {schema}.{table} does not exist in connection 'src'"
    still_there = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": schema, "table_name": "no_pk"}
    )
    assert still_there.get_json()["total_rows"] == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"table_name": "t"}, "schema_name"),
        ({"schema_name": "public"}, "table_name"),
        ({"schema_name": "public", "table_name": 7}, "table_name"),
        ({"schema_name": ["public"], "table_name": "t"}, "schema_name"),
    ],
)
def test_preview_payload_errors_name_the_field(client, postgres_db, body, field):
    cid = create(client, name="src", type="postgresql", **postgres_db).get_json()["connection"]["id"]
    response = client.post(f"/api/connections/{cid}/fetch-table-preview/", json=body)
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == field


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/api/nothing/").get_json()["status"] == "error"
    assert client.get("/api/nothing/").status_code == 404
    assert client.put("/api/connections/").status_code == 405
