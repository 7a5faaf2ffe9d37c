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


@pytest.fixture
def events(pg_sql, table):
    """The `table` fixture's events: 300 rows over 10 days of May 2024 (a test file may have its own)."""
    pg_sql(
        f"INSERT INTO {table} SELECT g, 'note ' || g, g / 4.0, "
        "timestamptz '2024-05-01 00:00:00+00' + interval '47 minutes' * g FROM generate_series(1, 300) g"
    )
    return table


@pytest.fixture
def receiver(tls_certificates):
    """A local HTTPS webhook receiver, its certificate signed by the tests' CA."""
    from tests.integration.test_alerts import WebhookReceiver

    made = WebhookReceiver(tls_certificates)
    yield made
    made.close()
