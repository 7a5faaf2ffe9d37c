"""The Cloud SQL adapter (etlwizard.reach.cloudsql.GoogleCloudSqlConnector) cannot reach Google here:
it is tested by what it asks Google's connector for (a recorder in place of
google.cloud.sql.connector.Connector, raising the connector's real exception classes) and of
google.auth.default. The tests' double (tests/cloudsql_double.py) is shown to hand back real
connections over local PostgreSQL's and MariaDB's Unix sockets."""

import asyncio
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import google.auth
import google.auth.exceptions
import google.cloud.sql.connector
import pg8000.dbapi
import pymysql
import pytest
from google.auth import credentials as google_credentials
from google.cloud.sql.connector import IPTypes
from google.cloud.sql.connector import exceptions as connector_errors
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from etlwizard.errors import SourceAuthError, SourceConnectionError
from etlwizard.reach.cloudsql import LOGIN_SCOPE, CloudSqlConnector, GoogleCloudSqlConnector
from tests.cloudsql_double import (
    TOKEN,
    CloudSqlDouble,
    CloudSqlRequest,
    mount_socket,
    pg8000_over_socket,
    pymysql_over_socket,
)

INSTANCE = "etl-proj:europe-west1:orders"
PASSWORD = "s3cret-Pa55word"


class Made:
    """What the recorder saw: every Connector made, and each one's connects."""

    def __init__(self):
        self.connectors: list[RecordingConnector] = []
        self.fail: BaseException | None = None  # raised by connect_async
        self.fail_on_make: BaseException | None = None  # raised by the constructor (credentials)
        self.delay = 0.0  # connect_async takes this long
        self.result: object = "a DB-API connection"


class RecordingConnector:
    """Stands in for google.cloud.sql.connector.Connector: records its arguments and connects."""

    made: Made

    def __init__(self, **kwargs):
        if self.made.fail_on_make is not None:
            raise self.made.fail_on_make
        self.kwargs = kwargs
        self.requests: list[tuple[str, str, dict]] = []
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.closed = 0
        self.made.connectors.append(self)

    async def connect_async(self, instance, driver, **kwargs):
        self.requests.append((instance, driver, kwargs))
        self.loops.append(asyncio.get_running_loop())
        if self.made.delay:
            await asyncio.sleep(self.made.delay)
        if self.made.fail is not None:
            raise self.made.fail
        return self.made.result

    def close(self):
        self.closed += 1


@pytest.fixture
def made(monkeypatch):
    record = Made()
    recorder = type("Connector", (RecordingConnector,), {"made": record})
    monkeypatch.setattr(google.cloud.sql.connector, "Connector", recorder)
    return record


@pytest.fixture
def adapter():
    a = GoogleCloudSqlConnector()
    yield a
    a.close()


def connect(adapter, driver="pg8000", *, password=PASSWORD, ip_type="public", iam=False, timeout=5.0, user="etl"):
    return adapter.connect(
        INSTANCE,
        driver,
        user=user,
        password=password,
        db="shop",
        ip_type=ip_type,
        enable_iam_auth=iam,
        timeout=timeout,
    )


def test_the_adapter_and_the_double_implement_the_protocol():
    def takes(connector: CloudSqlConnector) -> CloudSqlConnector:
        return connector

    for connector in (GoogleCloudSqlConnector(), CloudSqlDouble(pg8000_over_socket())):
        assert takes(connector) is connector
        assert all(callable(getattr(connector, name)) for name in ("connect", "login_token", "close"))


# --- What the adapter asks Google's connector for -------------------------------------------------


def test_a_password_login_over_public_ip_asks_for_exactly_the_connection(made, adapter):
    assert made.connectors == []  # nothing made before the first connect
    assert connect(adapter) == "a DB-API connection"
    [connector] = made.connectors
    assert set(connector.kwargs) == {"refresh_strategy", "loop"}
    assert connector.kwargs["refresh_strategy"] == "lazy"  # no background refresh on serverless
    assert isinstance(connector.kwargs["loop"], asyncio.AbstractEventLoop)
    assert connector.loops == [connector.kwargs["loop"]]  # connect_async runs on the connector's own loop
    assert connector.requests == [
        (
            INSTANCE,
            "pg8000",
            {
                "user": "etl",
                "password": PASSWORD,
                "db": "shop",
                "ip_type": IPTypes.PUBLIC,
                "enable_iam_auth": False,
                "timeout": 5.0,
            },
        )
    ]


@pytest.mark.parametrize(
    ("ip_type", "expected"), [("public", IPTypes.PUBLIC), ("private", IPTypes.PRIVATE), ("psc", IPTypes.PSC)]
)
@pytest.mark.parametrize("driver", ["pg8000", "pymysql"])
def test_ip_type_and_driver_are_passed_as_the_connector_names_them(made, adapter, ip_type, expected, driver):
    connect(adapter, driver, ip_type=ip_type, timeout=2.5)
    [(instance, asked_driver, kwargs)] = made.connectors[0].requests
    assert (instance, asked_driver, kwargs["ip_type"], kwargs["timeout"]) == (INSTANCE, driver, expected, 2.5)


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_an_iam_login_sends_no_password(made, adapter, password):
    connect(adapter, password=password, ip_type="private", iam=True, user="etl-wizard-runner@etl-proj.iam")
    [(_, _, kwargs)] = made.connectors[0].requests
    assert kwargs == {
        "user": "etl-wizard-runner@etl-proj.iam",
        "db": "shop",
        "ip_type": IPTypes.PRIVATE,
        "enable_iam_auth": True,
        "timeout": 5.0,
    }


def test_a_password_login_without_a_password_sends_none(made, adapter):
    connect(adapter, password=None)
    [(_, _, kwargs)] = made.connectors[0].requests
    assert "password" not in kwargs and kwargs["enable_iam_auth"] is False


def test_one_connector_serves_every_connect_and_close_closes_it(made, adapter):
    for driver in ("pg8000", "pymysql", "pg8000"):
        connect(adapter, driver)
    [connector] = made.connectors
    assert [driver for _, driver, _ in connector.requests] == ["pg8000", "pymysql", "pg8000"]
    assert connector.closed == 0
    adapter.close()
    assert connector.closed == 1
    adapter.close()  # twice is fine: nothing left to close
    assert connector.closed == 1
    connect(adapter)  # a later connect makes a new one
    assert len(made.connectors) == 2 and made.connectors[1].closed == 0


def test_close_without_a_connect_makes_nothing(made):
    GoogleCloudSqlConnector().close()
    assert made.connectors == []


@pytest.mark.parametrize(("driver", "ip_type"), [("psycopg", "public"), ("asyncpg", "public"), ("pg8000", "PRIVATE")])
def test_an_unknown_driver_or_ip_type_is_a_bug_and_asks_nothing(made, adapter, driver, ip_type):
    with pytest.raises(ValueError):
        connect(adapter, driver, ip_type=ip_type)
    assert made.connectors == []


def test_a_connect_is_bounded_by_its_timeout_as_a_whole(made, adapter):
    made.delay = 30  # Google's API, or a private IP's SYN, never answering
    started = time.monotonic()
    with pytest.raises(SourceConnectionError) as caught:
        connect(adapter, ip_type="private", timeout=0.5)
    assert time.monotonic() - started < 3
    assert "no connection within 0.5 s" in caught.value.message
    assert "VPC" in caught.value.message and "vpc_connector" in caught.value.message
    made.delay = 0  # the loop is free for the next connect
    assert connect(adapter) == "a DB-API connection"


# --- The connector's errors, as the user reads them ----------------------------------------------


def http_error(status: int, message: str) -> aiohttp.ClientResponseError:
    """What the connector raises when the Cloud SQL Admin API answers an error (raise_for_status,
    with the API's own message as the reason)."""
    url = URL("https://sqladmin.googleapis.com/sql/v1beta4/projects/etl-proj/instances/orders/connectSettings")
    request = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientResponseError(request, (), status=status, message=message)


CONNECTOR_ERRORS = [
    (
        http_error(403, "The client is not authorized to make this request."),
        False,
        "public",
        SourceAuthError,
        ["not authorized", "grant roles/cloudsql.client to the function's service account"],
    ),
    (
        http_error(403, "The client is not authorized to make this request."),
        True,
        "public",
        SourceAuthError,
        ["roles/cloudsql.client and roles/cloudsql.instanceUser"],
    ),
    (
        http_error(
            403,
            "Cloud SQL Admin API has not been used in project 123 before or it is disabled. "
            "Enable it by visiting https://console.developers.google.com/apis/api/sqladmin.googleapis.com",
        ),
        False,
        "public",
        SourceConnectionError,
        ["Cloud SQL Admin API is not enabled", "enable sqladmin.googleapis.com"],
    ),
    (
        http_error(404, "The Cloud SQL instance does not exist."),
        False,
        "public",
        SourceConnectionError,
        [f"Cloud SQL instance {INSTANCE} not found", "project:region:instance"],
    ),
    (
        http_error(401, "Request had invalid authentication credentials."),
        False,
        "public",
        SourceAuthError,
        ["did not accept the service account's credentials"],
    ),
    (
        http_error(503, "Service unavailable"),
        False,
        "public",
        SourceConnectionError,
        ["the Cloud SQL Admin API answered HTTP 503"],
    ),
    (
        connector_errors.CloudSQLIPTypeError(
            "Cloud SQL instance does not have any IP addresses matching preference: PRIVATE"
        ),
        False,
        "private",
        SourceConnectionError,
        ["has no private IP address", "choose the IP type the instance has"],
    ),
    (
        connector_errors.AutoIAMAuthNotSupported("Auto IAM not supported for this instance"),
        True,
        "public",
        SourceAuthError,
        ["IAM database login is not supported"],
    ),
    (
        connector_errors.IncompatibleDriverError(
            "Database driver 'pg8000' is incompatible with database version 'MYSQL_8_0'."
        ),
        False,
        "public",
        SourceConnectionError,
        ["incompatible with database version 'MYSQL_8_0'", "database type"],
    ),
    (
        connector_errors.ResourceExhaustedError("cooldown active", INSTANCE),
        False,
        "public",
        SourceConnectionError,
        ["cooldown active"],
    ),
    (
        connector_errors.CloudSQLConnectionError("connection failed"),
        False,
        "public",
        SourceConnectionError,
        ["connection failed"],
    ),
    (
        ValueError(f"[{INSTANCE}]: Provided region was mismatched - got region europe-west1, expected us-east1."),
        False,
        "public",
        SourceConnectionError,
        ["expected us-east1"],
    ),
    (
        ConnectionRefusedError(111, "Connection refused"),
        False,
        "public",
        SourceConnectionError,
        ["cannot reach it", "running and has a public IP"],
    ),
    (
        OSError(101, "Network is unreachable"),
        False,
        "private",
        SourceConnectionError,
        ["Network is unreachable", "VPC egress", "vpc_network and vpc_subnetwork"],
    ),
    (
        google.auth.exceptions.RefreshError("invalid_grant: account not found"),
        False,
        "public",
        SourceAuthError,
        ["could not be refreshed", "invalid_grant"],
    ),
    (
        google.auth.exceptions.TransportError("metadata server unreachable"),
        False,
        "public",
        SourceConnectionError,
        ["cannot reach Google"],
    ),
]


@pytest.mark.parametrize(
    ("error", "iam", "ip_type", "expected", "says"), CONNECTOR_ERRORS, ids=lambda v: type(v).__name__
)
def test_connector_errors_become_readable_etl_errors(made, adapter, error, iam, ip_type, expected, says):
    made.fail = error
    with pytest.raises(expected) as caught:
        connect(adapter, ip_type=ip_type, iam=iam)
    assert type(caught.value) is expected
    assert caught.value.message.startswith(f"Cloud SQL instance {INSTANCE}")
    for text in says:
        assert text in caught.value.message
    assert PASSWORD not in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_no_google_credentials_says_how_to_provide_them(made, adapter):
    made.fail_on_make = google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")
    with pytest.raises(SourceConnectionError) as caught:
        connect(adapter)
    assert "no Google credentials" in caught.value.message
    assert "gcloud auth application-default login" in caught.value.message
    made.fail_on_make = None
    assert connect(adapter) == "a DB-API connection"  # nothing half-made is kept


@pytest.mark.parametrize(
    "error",
    [
        pg8000.dbapi.DatabaseError({"S": "FATAL", "C": "28P01", "M": 'password authentication failed for user "etl"'}),
        pymysql.err.OperationalError(1045, "Access denied for user 'etl'@'10.0.0.3' (using password: YES)"),
    ],
    ids=["pg8000", "pymysql"],
)
def test_the_drivers_own_errors_pass_through_for_the_source_to_convert(made, adapter, error):
    made.fail = error
    with pytest.raises(type(error)) as caught:
        connect(adapter)
    assert caught.value is error


# --- login_token: an access token for IAM database login over the socket -------------------------


class FakeCredentials(google_credentials.Credentials):
    """google.auth credentials whose refresh hands out numbered tokens valid for `lifetime`."""

    def __init__(self, lifetime=timedelta(hours=1)):
        super().__init__()
        self.lifetime = lifetime
        self.refreshes = 0
        self.fail: Exception | None = None

    def refresh(self, request):
        if self.fail is not None:
            raise self.fail
        self.refreshes += 1
        self.token = f"ya29.token-{self.refreshes}"
        # google.auth compares expiry with a naive UTC now
        self.expiry = datetime.now(timezone.utc).replace(tzinfo=None) + self.lifetime


@pytest.fixture
def google_default(monkeypatch):
    calls = []
    credentials = FakeCredentials()

    def default(scopes=None, **kwargs):
        calls.append({"scopes": scopes, **kwargs})
        return credentials, "etl-proj"

    monkeypatch.setattr(google.auth, "default", default)
    return calls, credentials


def test_login_token_asks_for_the_login_scope_and_refreshes_only_when_expired(google_default, adapter):
    calls, credentials = google_default
    assert adapter.login_token() == "ya29.token-1"  # none yet: fetched
    assert adapter.login_token() == "ya29.token-1"  # fresh: reused
    assert credentials.refreshes == 1
    assert calls == [{"scopes": [LOGIN_SCOPE]}]
    assert LOGIN_SCOPE == "https://www.googleapis.com/auth/sqlservice.login"

    credentials.expiry = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)  # expired
    assert adapter.login_token() == "ya29.token-2"
    credentials.expiry = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=30)  # about to
    assert adapter.login_token() == "ya29.token-3"
    assert adapter.login_token() == "ya29.token-3"
    assert credentials.refreshes == 3 and len(calls) == 1  # one lookup of the default credentials


def test_login_token_errors_say_what_to_fix(google_default, adapter, monkeypatch):
    _, credentials = google_default
    credentials.fail = google.auth.exceptions.RefreshError("Failed to retrieve an access token")
    with pytest.raises(SourceAuthError, match="refused the service account a token"):
        adapter.login_token()
    credentials.fail = google.auth.exceptions.TransportError("metadata.google.internal unreachable")
    with pytest.raises(SourceConnectionError, match="cannot reach Google for a token"):
        adapter.login_token()

    def no_credentials(scopes=None, **kwargs):
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    with pytest.raises(SourceConnectionError, match="application-default login"):
        GoogleCloudSqlConnector().login_token()


# --- The tests' double: real connections over the servers' Unix sockets --------------------------


def test_the_double_hands_back_a_pg8000_connection_over_the_unix_socket():
    double = CloudSqlDouble(pg8000_over_socket("/var/run/postgresql"))
    db = double.connect(
        INSTANCE,
        "pg8000",
        user="postgres",
        password=None,
        db="test",
        ip_type="private",
        enable_iam_auth=False,
        timeout=5,
    )
    try:
        cursor = db.cursor()
        cursor.execute("SELECT current_database(), current_user, inet_server_addr() IS NULL")
        assert list(cursor.fetchall()) == [["test", "postgres", True]]  # no server address: the Unix socket
    finally:
        db.close()
    assert double.requests == [
        CloudSqlRequest(INSTANCE, "pg8000", "postgres", None, "test", "private", False, 5),
    ]
    assert double.login_token() == TOKEN and double.login_token() == TOKEN
    assert double.token_calls == 2
    double.close()
    assert double.closed == 1


def test_the_double_hands_back_a_pymysql_connection_over_the_unix_socket():
    double = CloudSqlDouble(pymysql_over_socket("/run/mysqld/mysqld.sock"), token="iam-token")
    db = double.connect(
        INSTANCE,
        "pymysql",
        user="root",
        password=None,
        db="test",
        ip_type="public",
        enable_iam_auth=True,
        timeout=5,
    )
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT DATABASE(), CURRENT_USER()")
            assert cursor.fetchall() == (("test", "root@localhost"),)
        assert db.host_info == "Localhost via UNIX socket"
    finally:
        db.close()
    assert double.requests[0].enable_iam_auth is True and double.requests[0].driver == "pymysql"
    assert double.login_token() == "iam-token" and double.token_calls == 1


def test_the_double_refuses_what_the_adapter_refuses():
    double = CloudSqlDouble(pg8000_over_socket())
    for driver, ip_type in (("psycopg", "public"), ("pg8000", "internal")):
        with pytest.raises(ValueError):
            double.connect(
                INSTANCE,
                driver,
                user="postgres",
                password=None,
                db="test",
                ip_type=ip_type,
                enable_iam_auth=False,
                timeout=5,
            )
    assert double.requests == []


@pytest.fixture
def short_dir():
    """A directory with a short path: a Unix socket's path has at most 107 bytes (pytest's tmp_path
    plus an instance connection name plus .s.PGSQL.5432 is longer)."""
    path = Path(tempfile.mkdtemp(prefix="csql", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def test_mount_socket_lays_sockets_out_as_cloud_run_mounts_them(short_dir):
    sockets = short_dir / "cloudsql"
    pg = mount_socket(sockets, INSTANCE, "postgresql")
    my = mount_socket(sockets, "etl-proj:europe-west1:shop", "mysql")
    assert pg == sockets / INSTANCE and (pg / ".s.PGSQL.5432").is_socket()
    assert my.is_socket()
    db = pg8000.dbapi.connect(user="postgres", database="test", unix_sock=str(pg / ".s.PGSQL.5432"))
    db.close()
    db = pymysql.connect(unix_socket=str(my), user="root", password="", database="test")
    db.close()


def test_mount_socket_refuses_a_path_too_long_for_a_unix_socket(tmp_path):
    with pytest.raises(ValueError, match="107"):
        mount_socket(tmp_path / ("x" * 80), INSTANCE, "postgresql")
