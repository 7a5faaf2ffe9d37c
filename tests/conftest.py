"""Fixtures over real things: throwaway PostgreSQL and MariaDB databases, the BigQuery emulator,
and an embedded stack in a temporary folder. bin/test starts the database servers if they are down."""

import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import pg8000.native
import pymysql
import pytest

from etlwizard.config import Settings
from etlwizard.emulator import BigQueryEmulator
from etlwizard.run.engine import handle_message
from etlwizard.stack import Stack
from web.app import create_app

SQL = Path(__file__).parent / "integration" / "sql"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
PROJECT = "etl-test-proj"


def statements(path: Path):
    return [s.strip() for s in path.read_text().split(";\n") if s.strip()]


@contextmanager
def _postgres_database(prefix: str, *setup: str):
    """A throwaway PostgreSQL database made with the `setup` statements; yields how to connect."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = pg8000.native.Connection(database="postgres", **POSTGRES)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        db = pg8000.native.Connection(database=name, **POSTGRES)
        for sql in setup:
            db.run(sql)
        db.close()
        yield {**POSTGRES, "database": name}
    finally:
        admin.run(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def postgres_db():
    with _postgres_database("etl_test", *statements(SQL / "postgres.sql")) as fields:
        yield fields


@pytest.fixture
def throwaway_postgres():
    """throwaway_postgres(prefix, *statements): a PostgreSQL database of the test's own, made with
    the statements and dropped after the test; returns how to connect."""
    with ExitStack() as made:
        yield lambda prefix, *setup: made.enter_context(_postgres_database(prefix, *setup))


@pytest.fixture(scope="session")
def mysql_db():
    name = f"etl_test_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(password="", autocommit=True, **MYSQL)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        db = pymysql.connect(password="", database=name, autocommit=True, charset="utf8mb4", **MYSQL)
        with db.cursor() as cursor:
            for sql in statements(SQL / "mysql.sql"):
                cursor.execute(sql)
        db.close()
        yield {**MYSQL, "database": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def bigquery_url(tmp_path_factory):
    with BigQueryEmulator(PROJECT, log_path=tmp_path_factory.mktemp("bq") / "emulator.log") as url:
        yield url


@pytest.fixture
def settings(tmp_path, bigquery_url):
    return Settings(
        project=PROJECT,
        bigquery_endpoint=bigquery_url,
        data_dir=tmp_path / "data",
        connect_timeout=3,
        query_timeout=30,
        run_lag_seconds=1,
    )


@pytest.fixture
def stack(settings):
    made = Stack(settings, run_handler=handle_message)
    yield made
    made.close()


@pytest.fixture
def make_stack(settings):
    """Another stack on the same job store and emulator: some settings changed, or parts swapped."""
    made = []

    def make(parts=None, **changes):
        made.append(Stack(replace(settings, **changes), run_handler=handle_message, **(parts or {})))
        return made[-1]

    yield make
    for stack in made:
        stack.close()


@pytest.fixture
def dataset():
    """A destination dataset of this test's own (the first job into it creates it)."""
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(stack):
    app = create_app(stack=stack)
    app.testing = True
    return app.test_client()


@pytest.fixture
def connect(client):
    """Save a connection through the API as a user would; returns its id."""

    def save(kind, db, name=None, **fields):
        response = client.post("/api/connections/", json={"name": name or kind, "type": kind, **db, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["connection"]["id"]

    return save


@pytest.fixture
def pg(connect, postgres_db):
    """A saved connection to the test PostgreSQL database."""
    return connect("postgresql", postgres_db, "pg")


@pytest.fixture
def maria(connect, mysql_db):
    """A saved connection to the test MariaDB database."""
    return connect("mysql", mysql_db, "maria")


def _sdk_root() -> Path | None:
    import shutil
    import subprocess

    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True, text=True, timeout=60
    )
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


@pytest.fixture(scope="session")
def sdk_root():
    return _sdk_root()


def _google_emulator(command: list[str], env_name: str, port: int, tmp: Path):
    """Start one of Google's emulators and wait until its port answers HTTP."""
    import os
    import subprocess
    import time
    import urllib.request

    with open(tmp / "emulator.log", "wb") as log:  # the child keeps its own handle
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: see {tmp / 'emulator.log'}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # it answered
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError(f"{command[0]} did not start within 90 s")
    previous = os.environ.get(env_name)
    os.environ[env_name] = f"127.0.0.1:{port}"
    return process, previous


def _stop(process, env_name, previous):
    import os
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    if previous is None:
        os.environ.pop(env_name, None)
    else:
        os.environ[env_name] = previous


def _emulator_fixture(sdk_root, tmp_path_factory, binary: str, env_name: str, component: str, data_dir=False):
    from etlwizard.emulator import free_port

    path = sdk_root / binary if sdk_root else None
    if path is None or not path.exists():
        pytest.skip(f"{component} is not installed: gcloud components install {component}")
    port = free_port()
    tmp = tmp_path_factory.mktemp(component)
    args = [str(path), "--host=127.0.0.1", f"--port={port}"] + ([f"--dir={tmp}"] if data_dir else [])
    process, previous = _google_emulator(args, env_name, port, tmp)
    yield f"127.0.0.1:{port}"
    _stop(process, env_name, previous)


@pytest.fixture(scope="session")
def firestore_emulator(sdk_root, tmp_path_factory):
    """Google's Firestore emulator; FIRESTORE_EMULATOR_HOST points the official client at it."""
    yield from _emulator_fixture(
        sdk_root,
        tmp_path_factory,
        "platform/cloud-firestore-emulator/cloud_firestore_emulator",
        "FIRESTORE_EMULATOR_HOST",
        "cloud-firestore-emulator",
    )


@pytest.fixture(scope="session")
def pubsub_emulator(sdk_root, tmp_path_factory):
    """Google's Pub/Sub emulator; PUBSUB_EMULATOR_HOST points the official client at it."""
    yield from _emulator_fixture(
        sdk_root,
        tmp_path_factory,
        "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
        "PUBSUB_EMULATOR_HOST",
        "pubsub-emulator",
        data_dir=True,
    )


# --- CI=true: a skipped test fails the run ------------------------------------------------------
# A missing server, emulator or browser skips a test on a developer's machine; in CI the same skip
# would leave the run green with the test never run. xfail stays as it is: that is a decision.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    import os

    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("CI") == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and CI=true runs every test: {reason}"
    return report


# --- TLS: servers of the tests' own (tests/integration/tls_servers.py) ---------------------------


@pytest.fixture(scope="session")
def tls_certificates(tmp_path_factory):
    """A CA, server certificates for 127.0.0.1/localhost and for another host, a client certificate
    and an unrelated CA, in a private folder (0700, files 0600)."""
    from tests.integration.tls_servers import make_certificates

    return make_certificates(tmp_path_factory.mktemp("tls") / "certificates")


@pytest.fixture(scope="session")
def tls_postgres(tls_certificates):
    """A PostgreSQL 15 cluster of the session's own: TLS-only TCP (hostssl trust for etl_tls, cert for
    etl_cert), the `shop` table; stopped and removed after the session."""
    from tests.integration.tls_servers import start_postgres

    with start_postgres(tls_certificates) as server:
        yield server


@pytest.fixture(scope="session")
def tls_mariadb(tls_certificates):
    """A MariaDB of the session's own: TLS-only TCP (etl_tls REQUIRE SSL, etl_cert REQUIRE X509), the
    `shop` table; stopped and removed after the session."""
    from tests.integration.tls_servers import start_mariadb

    with start_mariadb(tls_certificates) as server:
        yield server


# --- SSH: a bastion of the tests' own (tests/integration/ssh_bastion.py) -------------------------


@pytest.fixture(scope="session")
def ssh_bastion(tmp_path_factory):
    """Debian's sshd on 127.0.0.1 and a free port, keys only, forwarding allowed, logging in as the
    user the tests run as (root: PermitRootLogin prohibit-password); an SshBastion with its host key
    and client keys (ed25519, RSA and a wrong one). Stopped after the session."""
    from tests.integration.ssh_bastion import missing, running_bastion

    problem = missing()
    if problem:
        pytest.fail(problem)  # not a skip: the bastion is part of every run
    with running_bastion(tmp_path_factory.mktemp("ssh_bastion") / "bastion") as bastion:
        yield bastion
