"""Cloud SQL: the catalog driver (pg8000, pymysql) through Google's Cloud SQL Python Connector.

The bulk readers take the Unix socket Cloud Run and 2nd-gen Cloud Functions mount at
/cloudsql/<instance> (Route.bulk_endpoint). CloudSqlConnector is the interface; tests put a
recording double behind it, since nothing here can reach Google.
"""

import asyncio
import ssl
import threading
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import EtlError, SourceAuthError, SourceConnectionError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.sql.connector import Connector


class CloudSqlConnector(Protocol):
    def connect(
        self,
        instance: str,
        driver: str,
        *,
        user: str,
        password: str | None,
        db: str,
        ip_type: str,
        enable_iam_auth: bool,
        timeout: float,
    ) -> Any:
        """A DB-API connection of `driver` ("pg8000" or "pymysql") to the instance, TLS by the connector."""
        ...

    def login_token(self) -> str:
        """An OAuth 2 access token for IAM database login: the password over the /cloudsql socket."""
        ...

    def close(self) -> None: ...


DRIVERS = ("pg8000", "pymysql")
# The scope of an access token the database accepts as an IAM login's password.
LOGIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.login"
CLIENT_ROLE = "roles/cloudsql.client"  # connect to instances (the connector's Admin API calls)
LOGIN_ROLE = "roles/cloudsql.instanceUser"  # log in to a database as the service account (IAM login)
ADMIN_API = "sqladmin.googleapis.com"
_NO_CREDENTIALS = (
    "no Google credentials: on Google Cloud the function's service account provides them; elsewhere "
    "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
)


class GoogleCloudSqlConnector:
    """CloudSqlConnector over Google's Cloud SQL Python Connector (cloud-sql-python-connector).

    One Connector per process, made on the first connect and reused by every later one (it caches
    each instance's metadata and ephemeral certificate), with lazy refresh: certificates are fetched
    when a connect needs them, not by a background task (serverless instances get no CPU between
    requests). It runs on an event loop of its own, in a daemon thread, so a connect is bounded by
    its timeout as a whole: Google's API calls, the TCP connection and TLS, and the login.

    Errors of Google's side (no credentials, a missing role, an unknown instance, no address of the
    IP type asked for, no answer in time) become SourceConnectionError or SourceAuthError, saying
    what to fix. The driver's own errors (the database refusing the user or naming no such
    database) pass through unchanged, for the source to convert as it does over TCP.

    For pg8000 `timeout` stays the socket's timeout after the connect: the caller sets its query
    timeout on the connection's socket, as over TCP.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connector: Connector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._credentials: Credentials | None = None

    def connect(
        self,
        instance: str,
        driver: str,
        *,
        user: str,
        password: str | None,
        db: str,
        ip_type: str,
        enable_iam_auth: bool,
        timeout: float,
    ) -> Any:
        from google.cloud.sql.connector import IPTypes

        ip_types = {"public": IPTypes.PUBLIC, "private": IPTypes.PRIVATE, "psc": IPTypes.PSC}
        if driver not in DRIVERS:
            raise ValueError(f"no Cloud SQL driver {driver!r}: one of {', '.join(DRIVERS)}")
        if ip_type not in ip_types:
            raise ValueError(f"no Cloud SQL IP type {ip_type!r}: one of {', '.join(ip_types)}")
        kwargs: dict[str, Any] = {
            "user": user,
            "db": db,
            "ip_type": ip_types[ip_type],
            "enable_iam_auth": enable_iam_auth,
            "timeout": timeout,  # the driver's: pg8000's socket timeout, pymysql's connect_timeout
        }
        if password is not None and not enable_iam_auth:
            kwargs["password"] = password
        try:
            connector, loop = self._made()
            future = asyncio.run_coroutine_threadsafe(connector.connect_async(instance, driver, **kwargs), loop)
            try:
                return future.result(timeout)
            except TimeoutError:
                future.cancel()
                raise
        except Exception as e:
            converted = _convert(e, instance, ip_type, enable_iam_auth, timeout)
            if converted is None:
                raise
            raise converted from None

    def _made(self) -> "tuple[Connector, asyncio.AbstractEventLoop]":
        """The Connector and its loop, made on first use (the name looked up then, for tests)."""
        import google.cloud.sql.connector

        with self._lock:
            if self._connector is None or self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="cloudsql-connector", daemon=True)
                thread.start()
                try:
                    # Its own Admin API credentials come from Application Default Credentials here.
                    connector = google.cloud.sql.connector.Connector(refresh_strategy="lazy", loop=loop)
                except BaseException:
                    _stop(loop, thread)
                    raise
                self._connector, self._loop, self._thread = connector, loop, thread
            return self._connector, self._loop

    def login_token(self) -> str:
        """An access token of the process's Application Default Credentials (the function's service
        account) with the Cloud SQL login scope; fetched again when it expires (or nearly has)."""
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.auth.credentials import TokenState

        try:
            with self._lock:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(scopes=[LOGIN_SCOPE])
                credentials = self._credentials
                if credentials.token_state != TokenState.FRESH:
                    credentials.refresh(google.auth.transport.requests.Request())
                token = credentials.token
        except google.auth.exceptions.DefaultCredentialsError:
            raise SourceConnectionError(f"Cloud SQL IAM login: {_NO_CREDENTIALS}") from None
        except google.auth.exceptions.RefreshError as e:
            raise SourceAuthError(
                f"Cloud SQL IAM login: Google refused the service account a token ({_first_line(e)}): check "
                "that it exists and is enabled"
            ) from None
        except google.auth.exceptions.TransportError as e:
            raise SourceConnectionError(
                f"Cloud SQL IAM login: cannot reach Google for a token ({_first_line(e)})"
            ) from None
        if not isinstance(token, str) or not token:
            raise SourceAuthError("Cloud SQL IAM login: Google returned no access token")
        return token

    def close(self) -> None:
        """Close the Connector if one was made (its cached certificates, its HTTP session, its loop).
        A later connect makes a new one."""
        with self._lock:
            connector, loop, thread = self._connector, self._loop, self._thread
            self._connector = self._loop = self._thread = None
        if connector is not None:
            connector.close()  # runs its cleanup on our loop, for at most 3 seconds
        if loop is not None and thread is not None:
            _stop(loop, thread)


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()


def _convert(error: Exception, instance: str, ip_type: str, iam: bool, timeout: float) -> EtlError | None:
    """The EtlError a connector's error means, with what to fix; None for the driver's own errors
    (and ours), which the caller converts."""
    import aiohttp
    import google.auth.exceptions
    from google.cloud.sql.connector import exceptions as connector_errors

    if isinstance(error, EtlError) or type(error).__module__.split(".")[0] in DRIVERS:
        return None
    where = f"Cloud SQL instance {instance}"
    detail = _first_line(error)
    roles = f"{CLIENT_ROLE} and {LOGIN_ROLE}" if iam else CLIENT_ROLE
    unreachable = {
        "private": "a private IP is reached only from the instance's VPC network: give run_job and etl_api VPC "
        "egress (infra variables vpc_network and vpc_subnetwork, or vpc_connector)",
        "psc": "a Private Service Connect endpoint is reached only from its VPC network: give run_job and "
        "etl_api VPC egress (infra variables vpc_network and vpc_subnetwork, or vpc_connector)",
        "public": "check that the instance is running and has a public IP",
    }[ip_type]

    if isinstance(error, google.auth.exceptions.DefaultCredentialsError):
        return SourceConnectionError(f"{where}: {_NO_CREDENTIALS}")
    if isinstance(error, google.auth.exceptions.RefreshError):
        return SourceAuthError(
            f"{where}: the service account's credentials could not be refreshed ({detail}): check that "
            f"it exists and is enabled, and has {roles}"
        )
    if isinstance(error, google.auth.exceptions.TransportError):
        return SourceConnectionError(f"{where}: cannot reach Google for the service account's token ({detail})")
    if isinstance(error, aiohttp.ClientResponseError):
        status, message = error.status, (error.message or "").strip()
        said = f"HTTP {status}" + (f": {message}" if message else "")
        if status == 403 and ("SERVICE_DISABLED" in message or "has not been used" in message or "disabled" in message):
            return SourceConnectionError(
                f"{where}: the Cloud SQL Admin API is not enabled ({said}): enable {ADMIN_API} in the project "
                "the function runs in"
            )
        if status == 403:
            return SourceAuthError(
                f"{where}: Cloud SQL refused the service account ({said}): grant {roles} to the function's "
                f"service account (on the instance's project), and check that {ADMIN_API} is enabled"
            )
        if status == 401:
            return SourceAuthError(
                f"{where}: Google did not accept the service account's credentials ({said}): check that "
                f"it exists and is enabled, and has {roles}"
            )
        if status == 404:
            return SourceConnectionError(
                f"{where} not found ({said}): check the instance connection name, project:region:instance, "
                "as the instance's Overview page shows it"
            )
        return SourceConnectionError(f"{where}: the Cloud SQL Admin API answered {said}")
    if isinstance(error, connector_errors.CloudSQLIPTypeError):
        return SourceConnectionError(
            f"{where} has no {ip_type} IP address: choose the IP type the instance has (public, private "
            "or psc), or give the instance one"
        )
    if isinstance(error, connector_errors.AutoIAMAuthNotSupported):
        return SourceAuthError(
            f"{where}: IAM database login is not supported by this instance's engine version: log in with "
            "a password, or upgrade the instance"
        )
    if isinstance(error, connector_errors.IncompatibleDriverError):
        return SourceConnectionError(f"{where}: {detail} Check the connection's database type.")
    if isinstance(error, TimeoutError):
        return SourceConnectionError(f"{where}: no connection within {timeout:g} s: {unreachable}")
    if isinstance(error, ValueError) and ("region" in detail or "instance_connection" in detail):
        return SourceConnectionError(f"{where}: {detail}")  # a malformed name, or the wrong region in it
    if isinstance(error, ssl.SSLError):
        return SourceConnectionError(f"{where}: the TLS handshake with the instance failed ({detail})")
    if isinstance(error, OSError):  # refused, unreachable network, DNS (aiohttp's connection errors too)
        return SourceConnectionError(f"{where}: cannot reach it ({detail}): {unreachable}")
    connector_error = isinstance(
        error,
        connector_errors.CloudSQLConnectionError
        | connector_errors.TLSVersionError
        | connector_errors.RefreshNotValidError
        | connector_errors.DnsResolutionError
        | connector_errors.ClosedConnectorError
        | connector_errors.CacheClosedError
        | aiohttp.ClientError,
    )
    if connector_error:
        return SourceConnectionError(f"{where}: {detail}")
    return None


def _first_line(error: BaseException) -> str:
    try:
        text = str(error).strip() or type(error).__name__
    except Exception:  # an exception whose __str__ fails must not hide the error itself
        text = type(error).__name__
    return text.splitlines()[0][:500]
