"""Fixtures over real things: throwaway PostgreSQL and MariaDB databases, the BigQuery emulator,
and an embedded stack in a temporary folder. bin/test starts the database servers if they are down."""

import uuid
from pathlib import Path

import pg8000.native
import pymysql
import pytest

from etlwizard.config import Settings
from etlwizard.emulator import BigQueryEmulator
from etlwizard.stack import Stack
from web.app import create_app

SQL = Path(__file__).parent / "integration" / "sql"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
PROJECT = "etl-test-proj"


def statements(path: Path):
    return [s.strip() for s in path.read_text().split(";\n") if s.strip()]


@pytest.fixture(scope="session")
def postgres_db():
    name = f"etl_test_{uuid.uuid4().hex[:8]}"
    admin = pg8000.native.Connection(database="postgres", **POSTGRES)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        db = pg8000.native.Connection(database=name, **POSTGRES)
        for sql in statements(SQL / "postgres.sql"):
            db.run(sql)
        db.close()
        yield {**POSTGRES, "database": name}
    finally:
        admin.run(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


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
    return Settings(project=PROJECT, bigquery_endpoint=bigquery_url, data_dir=tmp_path / "data",
                    connect_timeout=3, query_timeout=30)


@pytest.fixture
def stack(settings):
    return Stack(settings)


@pytest.fixture
def client(stack):
    app = create_app(stack=stack)
    app.testing = True
    return app.test_client()
