"""Connections through an SSH bastion end to end (issue 14), as a user goes: the first Test
connection shows the bastion's host key to confirm, confirming it pins it; runs, previews and table
lists go through the tunnel (the database's own view says so), which is closed after; a wrong key,
a changed host key and an unreachable bastion each give the right readable error within the
connect timeout; a run over a rebuilt bastion fails readably and blocks no later run.

The bastion is the tests' own sshd (ssh_bastion.py); the databases are the machine's PostgreSQL and
MariaDB, which the bastion reaches at 127.0.0.1 too."""

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pg8000.native
import pymysql
import pytest

import tests.integration.ssh_bastion as bastion_module
from etlwizard.connections import open_connection
from etlwizard.emulator import free_port
from etlwizard.errors import EtlError
from etlwizard.jobs import get_job
from etlwizard.sources.mysql import MySqlSource
from etlwizard.sources.postgres import PostgresSource
from etlwizard.sources.sql import SqlSource
from tests.integration.loading import destination, make_job
from tests.integration.ssh_bastion import running_bastion
from tests.integration.tls_servers import SHOP_ROWS

CONNECT_TIMEOUT = 3  # the test settings' connect_timeout (tests/conftest.py)
WITHIN = CONNECT_TIMEOUT + 3  # what a failing Test connection may take, at most
STEPS = ["resolve", "tcp", "ssh", "tls", "auth", "catalog"]


# --- helpers ---------------------------------------------------------------------------------------


def via_bastion(bastion, key=None, **more) -> dict[str, Any]:
    """The "Connect through: SSH bastion" fields of the connection form."""
    return {
        "via": "ssh",
        "ssh_host": bastion.host,
        "ssh_port": bastion.port,
        "ssh_user": bastion.user,
        "ssh_private_key": (key or bastion.key).private_key,
        **more,
    }


def steps(response) -> dict[str, dict[str, Any]]:
    """A Test connection's checklist by step name (in a success's body, or an error's details)."""
    body = response.get_json()
    listed = body["steps"] if body["status"] == "success" else body["details"]
    assert [s["step"] for s in listed] == STEPS, listed
    return {s["step"]: s for s in listed}


def check_connection(client, cid):
    """POST .../test/: the response and how long it took."""
    started = time.monotonic()
    response = client.post(f"/api/connections/{cid}/test/")
    return response, time.monotonic() - started


def shown(client, cid) -> dict[str, Any]:
    (connection,) = [c for c in client.get("/api/connections/").get_json()["connections"] if c["id"] == cid]
    return connection


def refused(port: int) -> bool:
    """Whether 127.0.0.1:port refuses a TCP connection (nothing listens there any more)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def tunnel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("ssh-tunnel", "ssh-host-key"))]


def runs(client, job_id) -> list[dict[str, Any]]:
    return client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]


def run_now(client, stack, job_id, within: float = 120) -> dict[str, Any]:
    """ "Run now" as the jobs page does, waited for; the new run as its history shows it."""
    before = {r["id"] for r in runs(client, job_id)}
    response = client.post(f"/api/etl/jobs/{job_id}/run/")
    assert response.status_code == 202, response.get_json()
    assert stack.publisher.drain(timeout=within), f"the run did not end within {within} s"
    (new,) = [r for r in runs(client, job_id) if r["id"] not in before]
    return new


# --- the two engines behind the bastion ------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    kind: str  # postgresql | mysql
    db: dict[str, Any]  # host, port, user, database: as the bastion sees it (127.0.0.1)
    source_class: type[SqlSource]

    @property
    def schema(self) -> str:
        return "public" if self.kind == "postgresql" else self.db["database"]

    def sql(self, statement: str) -> list[tuple]:
        """One statement on a connection of its own (opened and closed here, direct, not tunnelled)."""
        if self.kind == "postgresql":
            db = pg8000.native.Connection(**self.db)
            try:
                return [tuple(row) for row in db.run(statement) or []]
            finally:
                db.close()
        db = pymysql.connect(password="", autocommit=True, init_command="SET time_zone = '+00:00'", **self.db)
        try:
            with db.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            db.close()

    def sessions(self) -> list[int]:
        """The client ports of ETL Wizard's sessions on the test database now, as the database sees them."""
        if self.kind == "postgresql":
            found = self.sql(
                "SELECT client_port FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'etl-wizard' AND pid <> pg_backend_pid()"
            )
            return [port for (port,) in found]
        found = self.sql(
            "SELECT HOST FROM information_schema.PROCESSLIST "
            f"WHERE DB = '{self.db['database']}' AND ID <> CONNECTION_ID()"
        )
        return [int(host.rsplit(":", 1)[1]) for (host,) in found]

    def own_port(self, source) -> int:
        """The client port of the session a source's catalog statement runs on, as the database sees it."""
        if self.kind == "postgresql":
            return source.query("SELECT inet_client_port()")[0][0]
        (host,) = source.query("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")[0]
        return int(host.rsplit(":", 1)[1])

    @property
    def server_port(self) -> int:
        return self.db["port"]

    def create_events(self, name: str) -> None:
        if self.kind == "postgresql":
            self.sql(
                f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount numeric(12,2), "
                "updated_at timestamptz NOT NULL)"
            )
        else:
            self.sql(
                f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount decimal(12,2), "
                "updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
            )

    def minutes_ago(self, minutes: int) -> str:
        if self.kind == "postgresql":
            return f"now() - interval '{minutes} minutes'"
        return f"UTC_TIMESTAMP(6) - INTERVAL {minutes} MINUTE"

    def now(self) -> str:
        return "now()" if self.kind == "postgresql" else "UTC_TIMESTAMP(6)"

    def rows(self, name: str) -> list[tuple]:
        """The source table's rows as (id, note, amount, updated_at aware), by id."""
        found = self.sql(f"SELECT id, note, amount, updated_at FROM {name} ORDER BY id")
        return [
            (i, note, amount, at if at.tzinfo else at.replace(tzinfo=timezone.utc)) for i, note, amount, at in found
        ]

    def whoami_view(self, name: str) -> None:
        """A view whose one row is the reading session's own client port, as the database sees it."""
        if self.kind == "postgresql":
            self.sql(f"CREATE VIEW {name} AS SELECT 1 AS id, inet_client_port() AS client_port")
        else:
            self.sql(
                f"CREATE VIEW {name} AS SELECT 1 AS id, "
                "CAST(SUBSTRING_INDEX(HOST, ':', -1) AS UNSIGNED) AS client_port "
                "FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
            )

    def drop(self, name: str, kind: str = "TABLE") -> None:
        self.sql(f"DROP {kind} IF EXISTS {name}")


@pytest.fixture(params=["postgresql", "mysql"])
def engine(request) -> Engine:
    if request.param == "postgresql":
        return Engine("postgresql", request.getfixturevalue("postgres_db"), PostgresSource)
    return Engine("mysql", request.getfixturevalue("mysql_db"), MySqlSource)


@pytest.fixture
def events(engine):
    """A source table of the test's own: events (id, note, amount, updated_at), dropped after."""
    name = f"events_{uuid.uuid4().hex[:8]}"
    engine.create_events(name)
    yield name
    engine.drop(name)


def landed(client, dataset, table) -> list[tuple]:
    """The destination's rows as (id, note, amount, updated_at), comparable with Engine.rows."""
    return [
        (r["id"], r["note"], Decimal(r["amount"]), datetime.fromisoformat(r["updated_at"]))
        for r in destination(client, dataset, table)
    ]


class Tunnels:
    """Every tunnel a run's source opens (its local port), and, while the run's reader holds its first
    batch (its connection open: the bulk reader's, or the row path's), the ETL Wizard sessions the
    database sees then and whether the bastion's sshd holds each."""

    def __init__(self, monkeypatch, engine: Engine, bastion):
        self.ports: list[int] = []
        self.reads: list[list[tuple[int, bool]]] = []
        read_arrow = engine.source_class.read_arrow

        def watched(source, *args, **kwargs):
            self.ports.append(source.route.endpoint().port)  # the source's tunnel, open now
            for number, item in enumerate(read_arrow(source, *args, **kwargs)):
                if number == 0:
                    self.reads.append(
                        [(port, bastion.forwards(port, engine.server_port)) for port in engine.sessions()]
                    )
                yield item

        monkeypatch.setattr(engine.source_class, "read_arrow", watched)

    def all_closed(self) -> bool:
        return bool(self.ports) and all(refused(port) for port in self.ports) and not tunnel_threads()


# --- 1. the first Test shows the host key; confirming it pins it -----------------------------------


def test_the_first_test_asks_to_confirm_the_host_key_and_confirming_pins_it(
    client, stack, connect, postgres_db, ssh_bastion
):
    cid = connect("postgresql", postgres_db, "pg via bastion", **via_bastion(ssh_bastion))
    assert shown(client, cid)["security"] == "disable, via bastion (host key not confirmed)"
    assert shown(client, cid)["ssh"] == {
        "host": ssh_bastion.host,
        "user": ssh_bastion.user,
        "port": ssh_bastion.port,
        "host_key": "",
    }

    response, seconds = check_connection(client, cid)
    assert response.status_code == 409, response.get_json()
    assert seconds < WITHIN
    checklist = steps(response)
    bastion = f"{ssh_bastion.host}:{ssh_bastion.port}"
    assert checklist["resolve"]["status"] == "ok" and ssh_bastion.host in checklist["resolve"]["detail"]
    assert checklist["tcp"]["status"] == "ok" and bastion in checklist["tcp"]["detail"]  # the bastion's, not the DB's
    ssh = checklist["ssh"]
    assert ssh["status"] == "confirm"
    assert ssh["fingerprint"] == ssh_bastion.host_key_fingerprint  # what ssh-keygen -lf says of the host key
    assert ssh_bastion.host_key_fingerprint in ssh["detail"] and "ssh-keygen -lf" in ssh["fix"]
    assert [checklist[s]["status"] for s in ("tls", "auth", "catalog")] == ["skipped"] * 3
    assert response.get_json()["message"] == ssh["detail"]

    # Another key than the one the bastion presents: refused, nothing pinned.
    other = ssh_bastion.wrong_key.fingerprint
    wrong = client.post(f"/api/connections/{cid}/host-key/", json={"fingerprint": other})
    assert wrong.status_code == 409, wrong.get_json()
    assert ssh_bastion.host_key_fingerprint in wrong.get_json()["message"] and other in wrong.get_json()["message"]
    assert stack.store.get("connections", cid)["ssh"]["host_key"] == ""
    assert shown(client, cid)["security"].endswith("(host key not confirmed)")
    assert check_connection(client, cid)[0].status_code == 409  # still to confirm
    not_a_fingerprint = client.post(f"/api/connections/{cid}/host-key/", json={"fingerprint": "MD5:00:11"})
    assert not_a_fingerprint.status_code == 400
    assert not_a_fingerprint.get_json()["details"][0]["field"] == "fingerprint"

    # The one it presents: pinned.
    trusted = client.post(f"/api/connections/{cid}/host-key/", json={"fingerprint": ssh_bastion.host_key_fingerprint})
    assert trusted.status_code == 200, trusted.get_json()
    assert trusted.get_json()["connection"]["security"] == "disable, via bastion"
    assert "not confirmed" not in shown(client, cid)["security"]
    assert shown(client, cid)["ssh"]["host_key"] == ssh_bastion.host_key_fingerprint
    assert stack.store.get("connections", cid)["ssh"]["host_key"] == ssh_bastion.host_key_fingerprint

    response, _ = check_connection(client, cid)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["server_version"].startswith("PostgreSQL ")
    checklist = steps(response)
    assert {s: checklist[s]["status"] for s in STEPS} == {
        "resolve": "ok",
        "tcp": "ok",
        "ssh": "ok",
        "tls": "skipped",  # tls_mode disable (a loopback host's default): nothing to check, said so
        "auth": "ok",
        "catalog": "ok",
    }
    assert bastion in checklist["tcp"]["detail"]
    assert ssh_bastion.host_key_fingerprint in checklist["ssh"]["detail"]
    assert f"it reaches {postgres_db['host']}:{postgres_db['port']}" in checklist["ssh"]["detail"]
    assert checklist["tls"]["detail"].startswith("disable: plaintext")
    assert not tunnel_threads()


def test_tls_through_the_bastion_checks_every_step_and_runs(
    client, stack, connect, dataset, ssh_bastion, tls_postgres, tls_certificates
):
    """verify-full through the tunnel: the certificate is checked against the database's own name
    (127.0.0.1 as the bastion sees it), every step of the checklist is ok, and a run (the bulk
    reader, libpq) loads the TLS server's rows through the tunnel too."""
    server = tls_postgres
    fields = {"host": server.host, "port": server.port, "database": server.database, "user": server.trust_role}
    cid = connect(
        "postgresql",
        fields,
        "tls via bastion",
        tls_ca=tls_certificates.ca.cert_pem,
        tls_mode="verify-full",
        **via_bastion(ssh_bastion, ssh_host_key=ssh_bastion.host_key_fingerprint),
    )
    assert shown(client, cid)["security"] == "verify-full, via bastion"
    response, _ = check_connection(client, cid)
    assert response.status_code == 200, response.get_json()
    checklist = steps(response)
    assert {s: checklist[s]["status"] for s in STEPS} == dict.fromkeys(STEPS, "ok")
    assert checklist["tls"]["detail"].startswith("verify-full: TLSv1.")
    assert not tunnel_threads()

    job = make_job(client, cid, "shop", dataset, load_type="catalog", timestamp_column=None)
    done = run_now(client, stack, job["id"])
    assert (done["status"], done["rows"]) == ("succeeded", len(SHOP_ROWS)), done["error"]
    assert landed(client, dataset, "events") == SHOP_ROWS
    assert not tunnel_threads()


# --- 2. runs through the bastion: exact rows, the database sees the tunnel, the tunnel closes -------


def test_runs_through_the_bastion_load_exact_rows_over_the_tunnel(
    client, stack, connect, engine, events, dataset, ssh_bastion, monkeypatch
):
    engine.sql(
        f"INSERT INTO {events} VALUES (1, 'first', 1.10, {engine.minutes_ago(60)}), "
        f"(2, 'naïve café ☕', 0.00, {engine.minutes_ago(50)}), (3, NULL, -1234.50, {engine.minutes_ago(40)})"
    )
    cid = connect(
        engine.kind,
        engine.db,
        f"{engine.kind} via bastion",
        **via_bastion(ssh_bastion, ssh_host_key=ssh_bastion.host_key_fingerprint),
    )
    catalog = make_job(
        client,
        cid,
        events,
        dataset,
        name="catalog",
        schema_name=engine.schema,
        load_type="catalog",
        timestamp_column=None,
        destination={"mode": "new", "dataset": dataset, "table": "catalog"},
    )
    incremental = make_job(
        client,
        cid,
        events,
        dataset,
        name="incremental",
        schema_name=engine.schema,
        destination={"mode": "new", "dataset": dataset, "table": "incremental"},
    )
    tunnels = Tunnels(monkeypatch, engine, ssh_bastion)

    def loads(job, table, rows):
        reads = len(tunnels.reads)
        done = run_now(client, stack, job["id"])
        assert (done["status"], done["rows"]) == ("succeeded", rows), done["error"]
        assert landed(client, dataset, table) == engine.rows(events)  # exact: the source's rows, each once
        # While the run's reader read, every ETL Wizard session on the database came through sshd
        seen = tunnels.reads[reads:]
        assert seen and all(sessions for sessions in seen), seen
        assert all(through for sessions in seen for _, through in sessions), seen
        # and after the run its tunnel is closed: nothing listens on its port, no tunnel thread is left
        assert tunnels.all_closed(), (tunnels.ports, tunnel_threads())
        assert get_job(stack, job["id"]).lease is None

    loads(catalog, "catalog", 3)
    loads(incremental, "incremental", 3)

    # A new row, a changed row, a deleted row: the incremental run takes the first two, the catalog all.
    engine.sql(f"INSERT INTO {events} VALUES (4, 'later', 4.40, {engine.now()})")
    engine.sql(f"UPDATE {events} SET note = 'changed', updated_at = {engine.now()} WHERE id = 2")
    time.sleep(1.5)  # the test stack's lag is one second
    loads(incremental, "incremental", 2)
    engine.sql(f"DELETE FROM {events} WHERE id = 3")
    loads(catalog, "catalog", 3)
    assert [r[0] for r in landed(client, dataset, "catalog")] == [1, 2, 4]


def test_every_reader_of_an_opened_source_goes_through_the_tunnel(stack, connect, engine, ssh_bastion):
    """The catalog driver and the bulk reader of one opened source, each asked from the database's side."""
    cid = connect(
        engine.kind, engine.db, "via bastion", **via_bastion(ssh_bastion, ssh_host_key=ssh_bastion.host_key_fingerprint)
    )
    view = f"whoami_{uuid.uuid4().hex[:8]}"
    engine.whoami_view(view)
    try:
        with open_connection(stack, cid) as source:
            catalog_port = engine.own_port(source)  # a pooled connection: still open after the statement
            catalog_through = ssh_bastion.forwards(catalog_port, engine.server_port)
            tunnel_port = source.route.endpoint().port
            meta = source.fetch_table_metadata(engine.schema, view)
            reader = source.read_arrow(
                meta, meta.columns, None, None, None, 1000, stack.warehouse.arrow_schema(meta.columns)
            )
            started, failure = time.monotonic(), None
            try:
                batch, _ = next(reader)  # the reading connection is open while its first batch is in hand
                (read_port,) = batch.column("client_port").to_pylist()
                if engine.kind == "mysql":
                    # ConnectorX reads a slice whole through a tunnel (its streaming reader holds the
                    # GIL while it connects, which the tunnel's thread needs): its connection is closed
                    # by now, so its URL is what shows the way it went.
                    url = source.connectorx_url()
                    read_through = f"@127.0.0.1:{tunnel_port}/" in url and "prefer_socket=false" in url
                else:
                    read_through = ssh_bastion.forwards(int(read_port), engine.server_port)
            except EtlError as error:
                failure = error.message
            finally:
                reader.close()
            seconds = time.monotonic() - started
            path = "row path" if source.bulk_unavailable(meta.columns) else "bulk reader"
        assert catalog_through, f"the catalog connection (client port {catalog_port}) did not come through sshd"
        assert failure is None, f"reading through the bastion ({path}) failed after {seconds:.0f} s: {failure}"
        assert seconds < WITHIN
        assert int(read_port) != catalog_port  # a connection of its own
        assert read_through, f"the {path}'s connection (client port {read_port}) did not come through sshd"
        assert refused(tunnel_port) and not tunnel_threads()
    finally:
        engine.drop(view, "VIEW")


def test_an_endpoint_through_the_bastion_says_it_is_tunnelled(stack, connect, postgres_db, ssh_bastion):
    """Route.endpoint() through a bastion gives 127.0.0.1:<the tunnel's port>; its `tunnelled` is what
    the readers ask to know they go through a tunnel (PostgreSQL's conninfo sets hostaddr by it,
    MySQL's bulk_unavailable sends verify-identity through a bastion to the row path by it), also
    when the database's host as the bastion sees it is 127.0.0.1 itself (the database on the bastion)."""
    cid = connect(
        "postgresql",
        postgres_db,
        "via bastion",
        **via_bastion(ssh_bastion, ssh_host_key=ssh_bastion.host_key_fingerprint),
    )
    with open_connection(stack, cid) as source:
        endpoint = source.route.endpoint()
        assert (endpoint.host, endpoint.address) == ("127.0.0.1", "127.0.0.1")
        assert endpoint.port != postgres_db["port"]  # the tunnel's local port
        assert endpoint.tunnelled, "an endpoint through the SSH tunnel says tunnelled=False (reach/route.py)"


# --- 3. what goes wrong, said readably within the timeout -----------------------------------------


def test_a_key_the_bastion_does_not_know_is_401_naming_authorized_keys(client, connect, postgres_db, ssh_bastion):
    cid = connect(
        "postgresql",
        postgres_db,
        "wrong key",
        **via_bastion(ssh_bastion, key=ssh_bastion.wrong_key, ssh_host_key=ssh_bastion.host_key_fingerprint),
    )
    response, seconds = check_connection(client, cid)
    assert response.status_code == 401, response.get_json()
    assert seconds < WITHIN
    checklist = steps(response)
    assert [checklist[s]["status"] for s in STEPS] == ["ok", "ok", "failed", "skipped", "skipped", "skipped"]
    assert f"refused user '{ssh_bastion.user}' with this key" in checklist["ssh"]["detail"]
    assert "authorized_keys" in checklist["ssh"]["fix"] and ssh_bastion.user in checklist["ssh"]["fix"]
    assert not tunnel_threads()


def test_a_changed_host_key_is_502_naming_both_keys(client, connect, postgres_db, ssh_bastion):
    confirmed = ssh_bastion.wrong_key.fingerprint  # a valid fingerprint, not the bastion's
    cid = connect("postgresql", postgres_db, "changed", **via_bastion(ssh_bastion, ssh_host_key=confirmed))
    response, seconds = check_connection(client, cid)
    assert response.status_code == 502, response.get_json()
    assert seconds < WITHIN
    checklist = steps(response)
    assert [checklist[s]["status"] for s in STEPS] == ["ok", "ok", "failed", "skipped", "skipped", "skipped"]
    detail = checklist["ssh"]["detail"]
    assert ssh_bastion.host_key_fingerprint in detail and confirmed in detail
    assert "fingerprint" not in checklist["ssh"]  # nothing to confirm from here: the user must decide
    assert "rebuilt" in checklist["ssh"]["fix"]
    assert response.get_json()["message"] == detail
    assert not tunnel_threads()


def test_an_unreachable_bastion_is_502_at_the_tcp_step(client, connect, postgres_db, ssh_bastion):
    port = free_port()  # nothing listens there
    cid = connect("postgresql", postgres_db, "gone", **via_bastion(ssh_bastion, ssh_port=port))
    response, seconds = check_connection(client, cid)
    assert response.status_code == 502, response.get_json()
    assert seconds < WITHIN
    checklist = steps(response)
    assert [checklist[s]["status"] for s in STEPS] == ["ok", "failed", "skipped", "skipped", "skipped", "skipped"]
    assert f"127.0.0.1:{port}" in checklist["tcp"]["detail"] and "refused" in checklist["tcp"]["detail"].lower()
    assert checklist["tcp"]["fix"].startswith("Nothing listens there")
    assert not tunnel_threads()


def test_a_run_over_a_rebuilt_bastion_fails_readably_and_blocks_nothing(
    client, stack, connect, postgres_db, dataset, tmp_path, monkeypatch
):
    """The bastion the connection confirmed is rebuilt at the same address with a new host key: the run
    fails at once with the reason in its history, frees the job, and a later Run now runs."""
    with running_bastion(tmp_path / "before") as before:
        old_key = before.host_key_fingerprint
        cid = connect("postgresql", postgres_db, "rebuilt", **via_bastion(before, ssh_host_key=old_key))
        job = make_job(
            client,
            cid,
            "composite_pk",
            dataset,
            selected_columns=["region", "order_no", "amount", "modified_at"],
            load_type="catalog",
            timestamp_column=None,
        )
    monkeypatch.setattr(bastion_module, "free_port", lambda: before.port)  # the same address, a new machine
    with running_bastion(tmp_path / "after") as after:
        after.authorize(before.key.public_key)  # the user's key, as before: only the host key changed
        assert after.port == before.port and after.host_key_fingerprint != old_key

        started = time.monotonic()
        failed = run_now(client, stack, job["id"], within=WITHIN + 10)
        assert time.monotonic() - started < WITHIN + 10  # no hang
        assert failed["status"] == "failed", failed
        error = failed["error"]
        assert after.host_key_fingerprint in error and old_key in error, error
        assert "rebuilt" in error and "in between" in error
        assert get_job(stack, job["id"]).lease is None
        assert not tunnel_threads()

        again = run_now(client, stack, job["id"], within=WITHIN + 10)
        assert again["status"] == "failed", again  # run again, not skipped as if a run still held the job
        assert [r["status"] for r in runs(client, job["id"])] == ["failed", "failed"]

        # The user compares the new key with the bastion's and confirms it: the next run loads.
        response, _ = check_connection(client, cid)
        assert response.status_code == 502 and steps(response)["ssh"]["status"] == "failed"
        trusted = client.post(f"/api/connections/{cid}/host-key/", json={"fingerprint": after.host_key_fingerprint})
        assert trusted.status_code == 200, trusted.get_json()
        done = run_now(client, stack, job["id"])
        assert (done["status"], done["rows"]) == ("succeeded", 2), done
        assert sorted((r["region"], r["order_no"]) for r in destination(client, dataset)) == [("eu", 1), ("us", 2)]
    assert not tunnel_threads()


# --- 4. previews and table lists through the bastion ----------------------------------------------


def test_previews_and_table_lists_go_through_the_bastion(client, connect, engine, ssh_bastion, monkeypatch):
    cid = connect(
        engine.kind, engine.db, "via bastion", **via_bastion(ssh_bastion, ssh_host_key=ssh_bastion.host_key_fingerprint)
    )
    seen: list[list[tuple[int, bool]]] = []
    ports: list[int] = []
    sample = SqlSource.sample_rows

    def watched(source, meta, limit):
        rows = sample(source, meta, limit)
        ports.append(source.route.endpoint().port)
        seen.append([(port, ssh_bastion.forwards(port, engine.server_port)) for port in engine.sessions()])
        return rows

    monkeypatch.setattr(SqlSource, "sample_rows", watched)

    listed = client.get(f"/api/connections/{cid}/tables/")
    assert listed.status_code == 200, listed.get_json()
    tables = {(t["schema_name"], t["table_name"]) for t in listed.get_json()["tables"]}
    assert {(engine.schema, "composite_pk"), (engine.schema, "no_pk"), (engine.schema, "empty_table")} <= tables
    assert not tunnel_threads()

    preview = client.post(
        f"/api/connections/{cid}/fetch-table-preview/",
        json={"schema_name": engine.schema, "table_name": "composite_pk"},
    )
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert body["total_rows"] == 2 and body["primary_key"] == ["region", "order_no"]
    assert [(r["region"], r["order_no"], Decimal(str(r["amount"]))) for r in body["sample_rows"]] == [
        ("eu", 1, Decimal("10.50")),
        ("us", 2, Decimal("20.00")),
    ]
    assert seen and seen[0] and all(through for _, through in seen[0]), seen  # the preview's sessions: sshd's
    assert refused(ports[0]) and not tunnel_threads()

    missing = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": engine.schema, "table_name": "nope"}
    )
    assert missing.status_code == 404
    assert not tunnel_threads()
