"""Fixtures of the integration tests beyond tests/conftest.py's."""

import uuid

import pg8000.native
import pytest

from tests.integration.loading import BIG_ROWS


@pytest.fixture
def function_env(monkeypatch, settings):
    """What the deployed functions read from their environment, pointed at the test's stack."""
    for name, value in {
        "ETL_STACK": "embedded",
        "ETL_PROJECT": settings.project,
        "ETL_BIGQUERY_ENDPOINT": settings.bigquery_endpoint,
        "ETL_DATA_DIR": str(settings.data_dir),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def pg_sql(postgres_db):
    db = pg8000.native.Connection(**postgres_db)
    yield db.run
    db.close()


@pytest.fixture
def table(pg_sql):
    """A PostgreSQL table of the test's own: events (id, note, amount, updated_at)."""
    name = f"events_{uuid.uuid4().hex[:8]}"
    pg_sql(
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount numeric(12,2), updated_at timestamptz NOT NULL)"
    )
    yield name
    pg_sql(f"DROP TABLE {name}")


@pytest.fixture
def big_table(postgres_db):
    """A PostgreSQL table of BIG_ROWS rows: a run over it takes seconds, long enough to cut off."""
    name = f"big_{uuid.uuid4().hex[:8]}"
    db = pg8000.native.Connection(**postgres_db)
    db.run(f"CREATE TABLE {name} (id bigint PRIMARY KEY, note text, at timestamptz NOT NULL)")
    db.run(f"INSERT INTO {name} SELECT g, 'row ' || g, now() - interval '1 day' FROM generate_series(1, {BIG_ROWS}) g")
    yield name
    db.run(f"DROP TABLE {name}")
    db.close()


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
