import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from etlwizard.config import Settings
from etlwizard.errors import ConfigError, InvalidInput
from etlwizard.model import Connection, TableRef, column_name_problem

ALL_VARS = (
    "ETL_STACK",
    "ETL_PROJECT",
    "GOOGLE_CLOUD_PROJECT",
    "ETL_DATASET",
    "ETL_BIGQUERY_ENDPOINT",
    "ETL_DATA_DIR",
    "ETL_CONNECT_TIMEOUT",
    "ETL_QUERY_TIMEOUT",
    "ETL_SAMPLE_SIZE",
    "ETL_EXACT_COUNT_LIMIT",
    "ETL_RUN_LAG_SECONDS",
    "ETL_LEASE_SECONDS",
    "ETL_BATCH_ROWS",
    "ETL_CHUNK_ROWS",
    "ETL_LOADS_IN_FLIGHT",
    "ETL_FANOUT_ROWS",
)


def test_defaults_from_empty_env():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.stack, settings.project, settings.dataset, settings.bigquery_endpoint) == (
        "embedded",
        "etl-wizard-local",
        "etl_wizard",
        None,
    )
    assert settings.data_dir == Path.home() / ".local" / "share" / "etl-wizard"
    assert (settings.connect_timeout, settings.query_timeout) == (5.0, 60.0)
    assert (settings.sample_size, settings.exact_count_limit) == (10, 1_000_000)


def test_every_variable_read():
    settings = Settings.from_env(
        {
            "ETL_STACK": "gcp",
            "ETL_PROJECT": "my-project",
            "ETL_DATASET": "raw",
            "ETL_BIGQUERY_ENDPOINT": "http://localhost:9050",
            "ETL_DATA_DIR": "/tmp/etl-data",
            "ETL_CONNECT_TIMEOUT": "2.5",
            "ETL_QUERY_TIMEOUT": "30",
            "ETL_SAMPLE_SIZE": "25",
            "ETL_EXACT_COUNT_LIMIT": "5000",
            "ETL_RUN_LAG_SECONDS": "30",
            "ETL_LEASE_SECONDS": "600",
            "ETL_BATCH_ROWS": "1000",
            "ETL_CHUNK_ROWS": "50000",
            "ETL_LOADS_IN_FLIGHT": "8",
            "ETL_FANOUT_ROWS": "1000000",
            "ETL_API_URL": "https://etl-api-abc-ew.a.run.app",
        }
    )
    assert settings == Settings(
        stack="gcp",
        project="my-project",
        dataset="raw",
        bigquery_endpoint="http://localhost:9050",
        data_dir=Path("/tmp/etl-data"),
        connect_timeout=2.5,
        query_timeout=30.0,
        sample_size=25,
        exact_count_limit=5000,
        run_lag_seconds=30,
        lease_seconds=600,
        batch_rows=1000,
        chunk_rows=50_000,
        loads_in_flight=8,
        fanout_rows=1_000_000,
        api_url="https://etl-api-abc-ew.a.run.app",
    )
    assert type(settings.query_timeout) is float and type(settings.sample_size) is int


@pytest.mark.parametrize(
    "env, project",
    [
        ({"GOOGLE_CLOUD_PROJECT": "from-google"}, "from-google"),
        ({"ETL_PROJECT": "from-etl", "GOOGLE_CLOUD_PROJECT": "from-google"}, "from-etl"),
        ({"ETL_PROJECT": "", "GOOGLE_CLOUD_PROJECT": "from-google"}, "from-google"),
    ],
)
def test_project_fallback(env, project):
    assert Settings.from_env(env).project == project


def test_reads_os_environ_when_none_given(monkeypatch):
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ETL_SAMPLE_SIZE", "3")
    monkeypatch.setenv("ETL_DATASET", "from_os")
    assert Settings.from_env() == Settings(sample_size=3, dataset="from_os")


@pytest.mark.parametrize("stack", ["aws", "GCP", "local"])
def test_unknown_stack(stack):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"ETL_STACK": stack})
    assert err.value.message == f"ETL_STACK must be one of embedded, gcp, not {stack!r}"


@pytest.mark.parametrize(
    "name, raw",
    [
        ("ETL_CONNECT_TIMEOUT", "abc"),
        ("ETL_CONNECT_TIMEOUT", "5s"),
        ("ETL_QUERY_TIMEOUT", "1m"),
        ("ETL_SAMPLE_SIZE", "1.5"),
        ("ETL_SAMPLE_SIZE", "ten"),
        ("ETL_EXACT_COUNT_LIMIT", "1e6"),
        ("ETL_EXACT_COUNT_LIMIT", "1,000"),
        ("ETL_CONNECT_TIMEOUT", "nan"),
        ("ETL_CONNECT_TIMEOUT", "-1"),
        ("ETL_QUERY_TIMEOUT", "0"),
        ("ETL_SAMPLE_SIZE", "-5"),
    ],
)
def test_bad_number_names_variable(name, raw):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: raw})
    assert err.value.message == f"{name} must be a positive number, not {raw!r}"


@pytest.mark.parametrize("name", ALL_VARS)
def test_empty_variable_means_default(name):
    assert Settings.from_env({name: ""}) == Settings()


PG = {
    "name": "orders db",
    "type": "postgresql",
    "host": "db.example.com",
    "port": 5433,
    "database": "shop",
    "user": "etl",
    "password": "s3cret",
}
MY = {"name": "legacy", "type": "mysql", "host": "10.0.0.5", "database": "crm", "user": "root"}
BQ = {"name": "warehouse", "type": "bigquery", "project": "my-project-123"}
CONTROL = "must not contain control characters (NUL, tab, line breaks, ...)"


def invalid(body, field, problem):
    with pytest.raises(InvalidInput) as err:
        Connection.from_payload(body)
    assert err.value.field == field
    assert err.value.message == f"{field}: {problem}"
    assert err.value.details == [{"field": field, "problem": problem}]
    assert err.value.status == 400


def test_postgres_connection():
    before = datetime.now(timezone.utc)
    connection, credentials = Connection.from_payload(dict(PG))
    assert credentials.password == "s3cret"
    assert re.fullmatch(r"[0-9a-f]{12}", connection.id)
    created = datetime.fromisoformat(connection.created_at)
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= datetime.now(timezone.utc)
    assert connection.to_dict() == {
        "id": connection.id,
        "name": "orders db",
        "type": "postgresql",
        "host": "db.example.com",
        "port": 5433,
        "database": "shop",
        "user": "etl",
        "project": "",
        "created_at": connection.created_at,
        "tls": {"mode": "require", "ca": False, "client_certificate": False},
        "via": "direct",
        "ssh": None,
        "cloudsql": None,
        "security": "require",
    }
    assert "password" not in connection.to_dict()
    assert connection.label == "connection 'orders db'"


def test_ids_differ():
    assert Connection.from_payload(dict(PG))[0].id != Connection.from_payload(dict(PG))[0].id


def test_bigquery_connection_ignores_host_fields():
    connection, credentials = Connection.from_payload({**BQ, "host": "not a host", "port": "x", "user": "u"})
    assert (connection.type, connection.project, credentials.password) == ("bigquery", "my-project-123", "")
    assert (connection.host, connection.port, connection.database, connection.user) == ("", None, "", "")


@pytest.mark.parametrize(
    "body, port",
    [
        (PG, 5433),
        ({**PG, "port": None}, 5432),
        ({**PG, "port": ""}, 5432),
        ({k: v for k, v in PG.items() if k != "port"}, 5432),
        (MY, 3306),
        ({**MY, "port": ""}, 3306),
        ({**MY, "port": "3307"}, 3307),
        ({**MY, "port": 1}, 1),
        ({**MY, "port": 65535}, 65535),
    ],
)
def test_port(body, port):
    connection = Connection.from_payload(dict(body))[0]
    assert connection.port == port and type(connection.port) is int


@pytest.mark.parametrize(
    "port",
    [0, -1, 65536, 100000, "0", "65536", "abc", "54.32", " 5432", "-1", 5432.0, True, False, [5432], {"n": 1}, "²"],
)
def test_bad_port(port):
    invalid({**PG, "port": port}, "port", "must be a whole number from 1 to 65535")


@pytest.mark.parametrize(
    "body, expected",
    [
        ({**PG, "password": ""}, ""),
        ({**PG, "password": None}, ""),
        ({k: v for k, v in PG.items() if k != "password"}, ""),
        ({**MY, "password": " p w "}, " p w "),
    ],
)
def test_password(body, expected):
    assert Connection.from_payload(body)[1].password == expected


@pytest.mark.parametrize("password", [123, ["x"], {"a": "b"}])
def test_password_must_be_text(password):
    invalid({**PG, "password": password}, "password", "must be a string")


@pytest.mark.parametrize(
    "base, field",
    [
        (PG, "name"),
        (PG, "type"),
        (PG, "host"),
        (PG, "database"),
        (PG, "user"),
        (MY, "host"),
        (MY, "database"),
        (MY, "user"),
        (BQ, "name"),
        (BQ, "project"),
    ],
)
@pytest.mark.parametrize("how", ["missing", "empty", "null"])
def test_required_field(base, field, how):
    body = {k: v for k, v in base.items() if k != field}
    if how != "missing":
        body[field] = "" if how == "empty" else None
    invalid(body, field, "is required")


@pytest.mark.parametrize("field", ["name", "type", "host", "database", "user"])
@pytest.mark.parametrize("value", [42, ["db"], {"x": 1}, True])
def test_field_must_be_text(field, value):
    invalid({**PG, field: value}, field, "must be a string")


@pytest.mark.parametrize("field, limit", [("name", 100), ("host", 253), ("database", 128), ("user", 128)])
def test_field_length(field, limit):
    assert getattr(Connection.from_payload({**PG, field: "a" * limit})[0], field) == "a" * limit
    invalid({**PG, field: "a" * (limit + 1)}, field, f"must be at most {limit} characters of text")


@pytest.mark.parametrize("field, limit", [("name", 100), ("database", 128), ("user", 128)])
def test_nul_byte_rejected(field, limit):
    invalid({**PG, field: "ab\x00c"}, field, CONTROL)


@pytest.mark.parametrize("kind", ["oracle", "PostgreSQL", "postgres", "MYSQL", "mariadb"])
def test_bad_type(kind):
    invalid({**PG, "type": kind}, "type", "must be one of postgresql, mysql, bigquery")


@pytest.mark.parametrize("host", ["db.example.com", "10.0.0.5", "::1", "[2001:db8::1]", "my_db-1.internal", "a" * 253])
def test_good_host(host):
    assert Connection.from_payload({**PG, "host": host})[0].host == host


@pytest.mark.parametrize("host", ["db host", "db/x", "db;drop", "user@db", "db\n", "héte"])
def test_bad_host(host):
    invalid({**PG, "host": host}, "host", CONTROL if "\n" in host else "must be a host name or IP address")


@pytest.mark.parametrize("project", ["abcdef", "my-project-123", "a" + "b" * 29])
def test_good_project(project):
    assert Connection.from_payload({**BQ, "project": project})[0].project == project


@pytest.mark.parametrize(
    "project", ["abcde", "My-Project", "1project", "project-", "my_project", "my project", "my-project\n"]
)
def test_bad_project(project):
    invalid(
        {**BQ, "project": project}, "project", CONTROL if "\n" in project else "is not a valid Google Cloud project id"
    )


def test_project_too_long():
    invalid({**BQ, "project": "a" * 31}, "project", "must be at most 30 characters of text")


@pytest.mark.parametrize("body", [None, [], ["name"], "name", 42, True])
def test_body_must_be_object(body):
    invalid(body, "body", "must be a JSON object")


def test_table_ref():
    assert TableRef.from_payload({"schema_name": "public", "table_name": 'Odd "Name"', "x": 1}) == TableRef(
        "public", 'Odd "Name"'
    )


@pytest.mark.parametrize("field", ["schema_name", "table_name"])
@pytest.mark.parametrize(
    "value, problem",
    [
        (None, "is required"),
        ("", "is required"),
        (7, "must be a string"),
        ("t" * 1025, "must be at most 1024 characters of text"),
        ("t\x00", CONTROL),
        ("t\n", CONTROL),
        ("t\x7f", CONTROL),
    ],
)
def test_table_ref_invalid(field, value, problem):
    body = {"schema_name": "public", "table_name": "orders", field: value}
    with pytest.raises(InvalidInput) as err:
        TableRef.from_payload(body)
    assert (err.value.field, err.value.message) == (field, f"{field}: {problem}")


@pytest.mark.parametrize("field", ["schema_name", "table_name"])
def test_table_ref_missing(field):
    body = {k: v for k, v in {"schema_name": "s", "table_name": "t"}.items() if k != field}
    with pytest.raises(InvalidInput) as err:
        TableRef.from_payload(body)
    assert err.value.field == field


@pytest.mark.parametrize("body", [None, [], "public.orders"])
def test_table_ref_body_must_be_object(body):
    with pytest.raises(InvalidInput) as err:
        TableRef.from_payload(body)
    assert err.value.field == "body"


# BigQuery's flexible column names: what a job may load under the source's own name.
@pytest.mark.parametrize(
    "name",
    ["id", "_x", "Order Date", "9lives", "a-b", "ünïcødé", "名前", "a&b%c=d+e:f'g<h>i#j|k", "x" * 300, "e\u0301"],
)
def test_column_names_bigquery_takes(name):
    assert column_name_problem(name) is None


@pytest.mark.parametrize(
    "name, problem",
    [
        ('a"b; DROP TABLE victim; --', "BigQuery column names cannot hold '\"', ';'"),
        ("a.b", "BigQuery column names cannot hold '.'"),
        ("a`b", "BigQuery column names cannot hold '`'"),
        ("a\x00b", "BigQuery column names cannot hold '\\x00'"),
        ("a\tb", "BigQuery column names cannot hold '\\t'"),
        ("a🙂", "BigQuery column names cannot hold '🙂'"),
        ("x" * 301, "BigQuery column names have at most 300 characters"),
        ("_TABLE_SUFFIX", "BigQuery keeps names starting with _TABLE_ for itself"),
        ("_partitiontime", "BigQuery keeps names starting with _PARTITION for itself"),
        ("", "BigQuery column names cannot be empty"),
    ],
)
def test_column_names_bigquery_refuses(name, problem):
    assert (column_name_problem(name) or "").startswith(problem)
