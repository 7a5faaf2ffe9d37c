"""TLS connections end to end, against the tests' own TLS-only PostgreSQL and MariaDB
(tls_servers.py): what a user sees through the API's Test connection for every mode, the client
certificate kept secret, runs that load exact rows over encrypted connections (the servers' own
view says so), and the certificate files of an opened source kept private and removed after."""

import json
import logging
import stat
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlwizard.connections import open_connection
from etlwizard.reach.options import MODE_NAMES, Credentials, TlsMode
from etlwizard.reach.tls import TlsFiles
from etlwizard.sources.mysql import MySqlSource
from etlwizard.sources.postgres import PostgresSource
from tests.integration.loading import destination, make_job, run
from tests.integration.tls_servers import SHOP_ROWS

ROW_PATH_LOGGER = "etlwizard.sources.sql"  # where read_arrow says a table is read on the row path
NO_CLIENT_CERT = "ConnectorX cannot present a client certificate"


# --- the two engines, as the tests use them ------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    kind: str  # postgresql | mysql
    server: Any  # tls_servers.PostgresTlsServer | MariadbTlsServer
    plaintext: dict[str, Any]  # the machine's own server on its usual port, TLS off

    def mode(self, level: TlsMode) -> str:
        return MODE_NAMES[self.kind][level]

    @property
    def schema(self) -> str:
        return "public" if self.kind == "postgresql" else self.server.database

    def fields(self, level: TlsMode, ca=None, user: str | None = None, **more: Any) -> dict[str, Any]:
        """A connection to the TLS server, as the wizard posts it."""
        body = {
            "host": self.server.host,
            "port": self.server.port,
            "database": self.server.database,
            "user": user or self.server.trust_role,
            "tls_mode": self.mode(level),
        }
        if ca is not None:
            body["tls_ca"] = ca.cert_pem
        return body | more


@pytest.fixture(params=["postgresql", "mysql"])
def engine(request):
    if request.param == "postgresql":
        server, plaintext = request.getfixturevalue("tls_postgres"), request.getfixturevalue("postgres_db")
    else:
        server, plaintext = request.getfixturevalue("tls_mariadb"), request.getfixturevalue("mysql_db")
    return Engine(request.param, server, plaintext)


def client_certificate(certs) -> dict[str, str]:
    return {"tls_client_cert": certs.client.cert_pem, "tls_client_key": certs.client.key_pem}


# --- Test connection, as the wizard shows it -----------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    status: int
    body: dict[str, Any]
    text: str
    seconds: float

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """The checklist: each step by name (in the body's steps, or an error's details)."""
        listed = self.body.get("steps") if self.status == 200 else self.body.get("details")
        return {s["step"]: s for s in listed or []}

    def failed(self) -> dict[str, Any]:
        (failed,) = [s for s in self.steps.values() if s["status"] == "failed"]
        return failed


def try_connection(client, connection_id: str) -> Attempt:
    started = time.monotonic()
    response = client.post(f"/api/connections/{connection_id}/test/")
    seconds = time.monotonic() - started
    return Attempt(response.status_code, response.get_json(), response.get_data(as_text=True), seconds)


def pem_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM block: any copy of it, JSON-escaped or not, holds them."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def assert_no_private_key(text: str, certs) -> None:
    assert "PRIVATE KEY" not in text
    for made in (certs.ca, certs.server, certs.other_host, certs.client, certs.other_ca):
        for line in pem_lines(made.key_pem):
            assert line not in text


def assert_no_client_certificate(text: str, certs) -> None:
    """Neither the client key nor the client certificate (a secret too) appears. Only the
    certificate's own lines count: its issuer's name is in the CA certificate, which is public."""
    assert_no_private_key(text, certs)
    public = {line for made in (certs.ca, certs.server, certs.other_host) for line in pem_lines(made.cert_pem)}
    own = [line for line in pem_lines(certs.client.cert_pem) if line not in public]
    assert len(own) >= 3  # its key and signature at least
    for line in own:
        assert line not in text


def assert_passes(tested: Attempt, mode: str) -> None:
    assert tested.status == 200, tested.body
    assert {name: s["status"] for name, s in tested.steps.items()} == {
        "resolve": "ok",
        "tcp": "ok",
        "tls": "ok",
        "auth": "ok",
        "catalog": "ok",
    }
    tls = tested.steps["tls"]["detail"]
    assert tls.startswith(f"{mode}: TLSv1."), tls  # the mode, and the version the server reports


def assert_refused(tested: Attempt, settings, certs, status: int, step: str, *words: str) -> dict[str, Any]:
    """Refused at `step`, naming `words`, within the connect timeout, with no key in the answer."""
    assert tested.status == status, tested.body
    assert tested.seconds < settings.connect_timeout + 3, f"took {tested.seconds:.1f} s"
    failed = tested.failed()
    assert failed["step"] == step, tested.steps
    for word in words:
        assert word.lower() in failed["detail"].lower(), failed
        assert word.lower() in tested.body["message"].lower(), tested.body
    assert failed["fix"], failed  # the one thing to do about it
    assert "Traceback" not in tested.text
    assert_no_private_key(tested.text, certs)
    return failed


# --- 1. each mode works where it should and refuses what it must ---------------------------------


def test_verify_full_with_the_ca_passes_every_step(engine, client, connect, tls_certificates):
    cid = connect(engine.kind, engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca), "verified")
    tested = try_connection(client, cid)
    assert_passes(tested, engine.mode(TlsMode.VERIFY_FULL))
    assert tested.steps["auth"]["detail"].startswith(f"logged in as {engine.server.trust_role}")


def test_a_certificate_for_another_host_fails_verify_full_and_passes_verify_ca(
    engine, client, connect, settings, tls_certificates
):
    full = connect(engine.kind, engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca), "full")
    ca_only = connect(engine.kind, engine.fields(TlsMode.VERIFY_CA, tls_certificates.ca), "ca only")
    with engine.server.serving(tls_certificates.other_host):
        refused = try_connection(client, full)
        accepted = try_connection(client, ca_only)
    failed = assert_refused(refused, settings, tls_certificates, 502, "tls", "hostname mismatch")
    assert "Connect with the name on the certificate" in failed["fix"]
    assert refused.steps["auth"]["status"] == "skipped"  # nothing was sent over the doubtful connection
    assert_passes(accepted, engine.mode(TlsMode.VERIFY_CA))


def test_a_ca_that_did_not_sign_the_certificate_is_refused(engine, client, connect, settings, tls_certificates):
    cid = connect(engine.kind, engine.fields(TlsMode.VERIFY_FULL, tls_certificates.other_ca), "other CA")
    failed = assert_refused(try_connection(client, cid), settings, tls_certificates, 502, "tls", "unknown CA")
    assert failed["fix"] == "Upload the CA certificate that signed the server's certificate."


def test_plaintext_to_a_tls_only_server_is_refused_readably(engine, client, connect, settings, tls_certificates):
    cid = connect(engine.kind, engine.fields(TlsMode.DISABLE), "plaintext")
    tested = try_connection(client, cid)
    assert tested.status in (401, 502), tested.body
    assert tested.seconds < settings.connect_timeout + 3
    failed = tested.failed()
    assert failed["step"] in ("tls", "auth"), tested.steps
    message = tested.body["message"]
    assert message.startswith("connection 'plaintext': ") and engine.server.trust_role in message, message
    assert failed["detail"] == message and "\n" not in message and failed["fix"]
    assert_no_private_key(tested.text, tls_certificates)
    # No TLS handshake took place: the checklist must not say one succeeded.
    assert tested.steps["tls"]["status"] != "ok", tested.steps["tls"]


def test_require_against_a_server_without_tls_fails_at_the_tls_step(
    engine, client, connect, settings, tls_certificates
):
    plain = {k: engine.plaintext[k] for k in ("host", "port", "user", "database")}
    cid = connect(engine.kind, plain | {"tls_mode": engine.mode(TlsMode.REQUIRE)}, "no TLS there")
    failed = assert_refused(
        try_connection(client, cid), settings, tls_certificates, 502, "tls", "server does not offer TLS"
    )
    assert failed["fix"].startswith("Turn TLS on at the server")


# --- 2. the client certificate: it logs in, and it stays a secret --------------------------------


def test_the_client_certificate_logs_in_and_never_shows(
    engine, client, stack, connect, settings, tls_certificates, caplog
):
    caplog.set_level(logging.DEBUG)
    body = {
        "name": "by certificate",
        "type": engine.kind,
        **engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca, engine.server.cert_role),
        **client_certificate(tls_certificates),
    }
    created = client.post("/api/connections/", json=body)
    assert created.status_code == 201, created.get_json()
    shown = created.get_json()["connection"]
    assert shown["tls"] == {"mode": engine.mode(TlsMode.VERIFY_FULL), "ca": True, "client_certificate": True}
    cid = shown["id"]

    tested = try_connection(client, cid)
    assert_passes(tested, engine.mode(TlsMode.VERIFY_FULL))
    assert tested.steps["auth"]["detail"].startswith(f"logged in as {engine.server.cert_role}")
    preview = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": engine.schema, "table_name": "shop"}
    )
    assert preview.status_code == 200, preview.get_json()
    assert [r["id"] for r in preview.get_json()["sample_rows"]] == [row[0] for row in SHOP_ROWS]

    answers = [created, client.get("/api/connections/"), preview]
    for text in [a.get_data(as_text=True) for a in answers] + [tested.text, caplog.text, job_store_text(settings)]:
        assert_no_client_certificate(text, tls_certificates)
    (kept,) = kept_secrets(settings)  # kept, where it belongs
    assert (kept.client_cert, kept.client_key) == (tls_certificates.client.cert_pem, tls_certificates.client.key_pem)


def test_the_certificate_user_is_refused_without_the_client_certificate(
    engine, client, connect, settings, tls_certificates
):
    fields = engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca, engine.server.cert_role)
    cid = connect(engine.kind, fields, "no certificate")
    tested = try_connection(client, cid)
    assert_refused(tested, settings, tls_certificates, 401, "auth", engine.server.cert_role)
    assert tested.steps["tls"]["status"] == "ok"  # the handshake went through: the login is what failed


def job_store_text(settings) -> str:
    """Everything the embedded stack keeps besides the secret store: the job store's SQLite files."""
    kept = [p for p in Path(settings.data_dir).rglob("*") if p.is_file() and not p.name.startswith("secrets.")]
    assert any(p.name.startswith("jobs.sqlite3") for p in kept), kept
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in kept)


def kept_secrets(settings) -> list[Credentials]:
    """What the secret store (a 0600 file in the embedded stack) holds."""
    return [Credentials.load(v) for v in json.loads((Path(settings.data_dir) / "secrets.json").read_text()).values()]


# --- 3. runs over verify-full: exact rows, and the server saw only encrypted connections ---------


def shop_job(client, cid, engine, dataset, load_type):
    kind = {"load_type": "catalog", "timestamp_column": None} if load_type == "catalog" else {}
    return make_job(
        client,
        cid,
        "shop",
        dataset,
        name=f"shop {load_type}",
        schema_name=engine.schema,
        destination={"mode": "new", "dataset": dataset, "table": f"shop_{load_type}"},
        **kind,
    )


def landed_rows(client, dataset, table) -> list[tuple]:
    """The destination's rows as (id, note, amount, updated_at), comparable with SHOP_ROWS."""
    return [
        (r["id"], r["note"], Decimal(r["amount"]), datetime.fromisoformat(r["updated_at"]))
        for r in destination(client, dataset, table)
    ]


class BulkReads:
    """Counts the bulk reader's reads and, while each one's connection is open (its first batch is
    in hand), asks the server what it sees (`look`)."""

    def __init__(self, monkeypatch, source_class, look):
        self.seen: list[Any] = []
        original = source_class.bulk_batches

        def watched(source, sql, batch_size):
            for number, batch in enumerate(original(source, sql, batch_size)):
                if number == 0:
                    self.seen.append(look())
                yield batch

        monkeypatch.setattr(source_class, "bulk_batches", watched)


def postgres_sessions(server) -> list[dict[str, Any]]:
    """pg_stat_ssl for every session of ETL Wizard's (application_name etl-wizard) on the server now."""
    admin = server.admin()
    try:
        rows = admin.run(
            "SELECT a.usename, s.ssl, s.version, s.client_dn, a.query FROM pg_stat_activity a "
            "JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'etl-wizard'"
        )
    finally:
        admin.close()
    return [dict(zip(("user", "ssl", "version", "client_dn", "query"), row, strict=True)) for row in rows]


def assert_postgres_read_encrypted(seen: list[Any], user: str) -> list[dict[str, Any]]:
    """What PostgreSQL saw while the bulk reader (ADBC, libpq) read: its session, the one running the
    COPY, and every other session of ETL Wizard's (the catalog driver's), each encrypted."""
    (sessions,) = seen
    assert any(s["query"].lstrip().upper().startswith("COPY") for s in sessions), sessions
    assert all(s["ssl"] and s["version"].startswith("TLSv1.") for s in sessions), sessions
    assert {s["user"] for s in sessions} == {user}
    return sessions


@dataclass
class MariadbSession:
    thread: int
    user: str
    transport: str  # as the server logged the login: "SSL/TLS", "TCP/IP" or "Socket"
    refused: bool
    commands: list[tuple[str, str]]  # (command type, argument)

    def read_the_shop(self, command: str) -> bool:
        """Whether this session read the shop table with `command` (ConnectorX: Execute, a prepared
        statement; pymysql: Query)."""
        return any(kind == command and "`shop`" in text and "SELECT" in text for kind, text in self.commands)


class MariadbLog:
    """MariaDB's own record of the sessions opened while the block runs: its general log (as a
    table, on for the block only), whose Connect lines say each login's transport, and the TLS
    handshakes it finished (a global status counter). Over the admin's Unix socket, opened first."""

    def __init__(self, server):
        self.server = server
        self.sessions: list[MariadbSession] = []
        self.tls_handshakes = 0

    def __enter__(self) -> "MariadbLog":
        self.admin = self.server.admin(None)
        self.saved = self._one("SELECT @@global.log_output, @@global.general_log")
        for sql in ("SET GLOBAL general_log = OFF", "TRUNCATE mysql.general_log", "SET GLOBAL log_output = 'TABLE'"):
            self._one(sql)
        self.handshakes_before = self._handshakes()
        self._one("SET GLOBAL general_log = ON")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._one("SET GLOBAL general_log = OFF")
            self.tls_handshakes = self._handshakes() - self.handshakes_before
            with self.admin.cursor() as cursor:
                cursor.execute("SELECT thread_id, command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log")
                entries = cursor.fetchall()
            self._one("SET GLOBAL log_output = %s", (self.saved[0],))
            self._one(f"SET GLOBAL general_log = {int(self.saved[1])}")
        finally:
            self.admin.close()
        by_thread: dict[int, MariadbSession] = {}
        for thread, kind, text in entries:
            if kind == "Connect" and thread not in by_thread:  # "etl_tls@127.0.0.1 on shop using SSL/TLS"
                user, _, transport = text.partition(" using ")
                by_thread[thread] = MariadbSession(thread, user.split("@")[0], transport, False, [])
            elif thread in by_thread:
                session = by_thread[thread]
                session.refused |= kind == "Connect" and text.startswith("Access denied")
                session.commands.append((kind, text))
        self.sessions = list(by_thread.values())

    def of(self, user: str) -> list[MariadbSession]:
        return [s for s in self.sessions if s.user == user]

    def _one(self, sql: str, args: Any = None) -> Any:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchone()

    def _handshakes(self) -> int:
        return int(self._one("SHOW GLOBAL STATUS LIKE 'Ssl_finished_accepts'")[1])


def assert_mariadb_logins_encrypted(log: MariadbLog, user: str, read_with: str) -> list[MariadbSession]:
    """Every session `user` logged in with was TLS (the server takes TCP over TLS only, and the
    user is REQUIRE SSL or X509: it could not have been otherwise, and the log says so), the shop
    was read on one of them (`read_with`: the bulk reader's Execute or the row path's Query), and
    the server finished a TLS handshake for each."""
    logged_in = [s for s in log.of(user) if not s.refused]
    assert logged_in, log.sessions
    assert [s.transport for s in logged_in] == ["SSL/TLS"] * len(logged_in), logged_in
    assert any(s.read_the_shop(read_with) for s in logged_in), logged_in
    assert log.tls_handshakes >= len(logged_in), (log.tls_handshakes, logged_in)
    return logged_in


def row_path_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ROW_PATH_LOGGER and "row path" in r.getMessage()]


@pytest.mark.parametrize("load_type", ["catalog", "transactional"])
def test_a_run_over_verify_full_loads_exact_rows_through_encrypted_bulk_reads(
    engine, load_type, client, stack, connect, dataset, tls_certificates, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="etlwizard")
    cid = connect(engine.kind, engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca), "verified")
    job = shop_job(client, cid, engine, dataset, load_type)
    if engine.kind == "postgresql":
        reads = BulkReads(monkeypatch, PostgresSource, lambda: postgres_sessions(engine.server))
        done = run(stack, job["id"])
    else:
        reads = BulkReads(monkeypatch, MySqlSource, lambda: None)
        with MariadbLog(engine.server) as log:
            done = run(stack, job["id"])

    assert (done["status"], done["rows"]) == ("succeeded", len(SHOP_ROWS)), done
    assert landed_rows(client, dataset, f"shop_{load_type}") == SHOP_ROWS
    assert len(reads.seen) == 1 and row_path_lines(caplog) == []  # the bulk reader read it, not the row path
    if engine.kind == "postgresql":
        assert_postgres_read_encrypted(reads.seen, engine.server.trust_role)
    else:
        # MariaDB shows no other session's cipher without performance_schema: its general log does
        # say how each session logged in. The catalog driver's (pymysql) and ConnectorX's, over TLS.
        assert_mariadb_logins_encrypted(log, engine.server.trust_role, read_with="Execute")


def test_the_mysql_bulk_reader_stays_on_tls_to_a_server_on_this_machine(
    client, stack, connect, dataset, tls_mariadb, tls_certificates, caplog
):
    """A user the server also lets in over its Unix socket, as most are (require_secure_transport
    counts a socket as secure). ConnectorX's MySQL driver (the Rust mysql crate), connected over TCP
    to a loopback address, asks the server for @@socket and logs in again over that socket
    (its prefer_socket option, on by default): the bulk read then runs without TLS and without the
    certificate check verify-identity asks for. Through an SSH tunnel (127.0.0.1 too) the socket
    path is the remote server's, opened on this machine: another server's, if one listens there."""
    user = f"etl_local_{uuid.uuid4().hex[:6]}"
    admin = tls_mariadb.admin()
    with admin.cursor() as cursor:
        for host in ("%", "localhost"):
            cursor.execute(f"CREATE USER {user}@'{host}'")
            cursor.execute(f"GRANT SELECT ON shop.* TO {user}@'{host}'")
    try:
        engine = Engine("mysql", tls_mariadb, {})
        cid = connect("mysql", engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca, user), "local user")
        job = shop_job(client, cid, engine, dataset, "catalog")
        with MariadbLog(tls_mariadb) as log:
            done = run(stack, job["id"])
        assert (done["status"], done["rows"]) == ("succeeded", len(SHOP_ROWS)), done
        assert landed_rows(client, dataset, "shop_catalog") == SHOP_ROWS
        bulk = [s for s in log.of(user) if s.read_the_shop("Execute")]
        assert [s.transport for s in bulk] == ["SSL/TLS"], (
            f"ConnectorX read the rows over {[s.transport for s in bulk]}, not TLS: its URL needs prefer_socket=false"
        )
        attempts = sorted({s.transport for s in log.of(user)})
        assert attempts == ["SSL/TLS"], f"logins over {attempts}: only TCP with TLS may be tried"
    finally:
        with admin.cursor() as cursor:
            for host in ("%", "localhost"):
                cursor.execute(f"DROP USER {user}@'{host}'")
        admin.close()


# --- 4. a client certificate on every read path --------------------------------------------------


def test_a_run_with_a_client_certificate_loads_exact_rows(
    engine, client, stack, connect, settings, dataset, tls_certificates, monkeypatch, caplog
):
    """PostgreSQL's bulk reader (libpq) presents the certificate from the route's files; ConnectorX
    cannot, so a MySQL run reads on the row path (pymysql, which can), and says why."""
    caplog.set_level(logging.DEBUG)
    role = engine.server.cert_role
    fields = engine.fields(TlsMode.VERIFY_FULL, tls_certificates.ca, role, **client_certificate(tls_certificates))
    cid = connect(engine.kind, fields, "by certificate")
    job = shop_job(client, cid, engine, dataset, "catalog")
    if engine.kind == "postgresql":
        reads = BulkReads(monkeypatch, PostgresSource, lambda: postgres_sessions(engine.server))
        done = run(stack, job["id"])
    else:
        reads = BulkReads(monkeypatch, MySqlSource, lambda: None)
        with MariadbLog(engine.server) as log:
            done = run(stack, job["id"])

    assert (done["status"], done["rows"]) == ("succeeded", len(SHOP_ROWS)), done
    assert landed_rows(client, dataset, "shop_catalog") == SHOP_ROWS
    if engine.kind == "postgresql":
        assert row_path_lines(caplog) == []
        sessions = assert_postgres_read_encrypted(reads.seen, role)
        assert {s["client_dn"] for s in sessions} == {f"/O=ETL Wizard tests/CN={role}"}  # each presented it
    else:
        assert reads.seen == []
        (line,) = row_path_lines(caplog)
        assert line.endswith(f"reading {engine.schema}.shop on the row path: {NO_CLIENT_CERT}"), line
        assert_mariadb_logins_encrypted(log, role, read_with="Query")  # X509: each login presented it

    history = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_data(as_text=True)
    for text in (history, json.dumps(done), caplog.text, job_store_text(settings)):
        assert_no_client_certificate(text, tls_certificates)


# --- 5. the certificate files: private while the source is open, gone after ----------------------


def test_certificate_files_are_private_and_removed_when_the_source_closes(engine, stack, connect, tls_certificates):
    fields = engine.fields(
        TlsMode.VERIFY_FULL, tls_certificates.ca, engine.server.cert_role, **client_certificate(tls_certificates)
    )
    cid = connect(engine.kind, fields, "by certificate")
    with open_connection(stack, cid) as source:
        assert source.test()  # logged in with them
        files = source.route.files()
        folder = files.folder
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        written = {
            Path(files.ca).name: tls_certificates.ca.cert_pem,
            Path(files.cert).name: tls_certificates.client.cert_pem,
            Path(files.key).name: tls_certificates.client.key_pem,
        }
        assert sorted(p.name for p in folder.iterdir()) == sorted(written)
        for name, text in written.items():
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
            assert (folder / name).read_text() == text
        # the bulk reader is given these files
        if engine.kind == "postgresql":
            conninfo = source.conninfo()
            for path in (files.ca, files.cert, files.key):
                assert f"='{path}'" in conninfo
        else:
            assert f"ssl-ca={files.ca}".replace("/", "%2F") in source.connectorx_url()
    assert not folder.exists()


def test_a_connection_test_leaves_no_certificate_files(engine, client, connect, tls_certificates, monkeypatch):
    written: list[TlsFiles] = []
    original = TlsFiles.write.__func__

    def write(cls, ca, cert, key):
        written.append(original(cls, ca, cert, key))
        return written[-1]

    monkeypatch.setattr(TlsFiles, "write", classmethod(write))
    fields = engine.fields(
        TlsMode.VERIFY_FULL, tls_certificates.ca, engine.server.cert_role, **client_certificate(tls_certificates)
    )
    cid = connect(engine.kind, fields, "by certificate")
    assert try_connection(client, cid).status == 200
    assert written and not any(files.folder.exists() for files in written)
