"""The one place a connection becomes "how to open a connection", for every read path: the catalog
drivers (pg8000, pymysql), the bulk readers (ADBC's libpq, ConnectorX), previews and tests. So no
path can be weaker than the connection asks.

A Route lives as long as the source opened over it: the SSH tunnel and the certificate files it
makes on first use are closed and removed with it (a run's, a preview's, a test's).
"""

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import SourceConnectionError
from ..model import Connection
from .cloudsql import CloudSqlConnector
from .options import Credentials, TlsMode
from .tls import TlsFiles, client_context

if TYPE_CHECKING:
    from .ssh import SshTunnel

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    host: str  # the database's own name: what TLS verifies
    address: str  # where TCP goes: the host, or the tunnel's end on 127.0.0.1
    port: int
    socket: str = ""  # a Unix socket instead (Cloud SQL's /cloudsql/<instance>)
    tunnelled: bool = False  # through an SSH bastion's tunnel (even to a database at 127.0.0.1)


class Route:
    def __init__(
        self, connection: Connection, credentials: Credentials, settings: Settings, cloudsql: CloudSqlConnector | None
    ):
        self.connection = connection
        self.credentials = credentials
        self.settings = settings
        self._cloudsql = cloudsql
        self._lock = threading.Lock()
        self._tunnel: SshTunnel | None = None
        self._files: TlsFiles | None = None
        self._context: Any = None

    @property
    def level(self) -> TlsMode:
        return self.connection.tls.level(self.connection.type)

    def endpoint(self) -> Endpoint:
        """Where the catalog driver connects (not for Cloud SQL: connect_cloudsql)."""
        c = self.connection
        assert c.port is not None
        if c.ssh is None:
            return Endpoint(c.host, c.host, c.port)
        from .ssh import SshTunnel  # asyncssh, loaded by the connections that use it

        with self._lock:
            if self._tunnel is None:
                self._tunnel = SshTunnel(
                    host=c.ssh.host,
                    port=c.ssh.port,
                    user=c.ssh.user,
                    private_key=self.credentials.ssh_key,
                    passphrase=self.credentials.ssh_passphrase,
                    host_key=c.ssh.host_key,
                    target_host=c.host,
                    target_port=c.port,
                    timeout=self.settings.connect_timeout,
                )
            tunnel = self._tunnel
        return Endpoint(c.host, LOOPBACK, tunnel.open(), tunnelled=True)

    def bulk_endpoint(self) -> Endpoint | None:
        """Where the bulk reader connects: a Cloud SQL instance's mounted socket (None when it is
        not mounted here: the run reads through the connector's row path instead)."""
        if self.connection.cloudsql is None:
            return self.endpoint()
        path = self.settings.cloudsql_socket_dir / self.connection.cloudsql.instance
        marker = path / ".s.PGSQL.5432" if self.connection.type == "postgresql" else path
        return Endpoint("localhost", "localhost", 0, str(path)) if _is_socket(marker) else None

    def ssl_context(self) -> Any:
        """The context for pg8000 and pymysql (None: plaintext), made once per route."""
        with self._lock:
            if self._context is None and self.level != TlsMode.DISABLE:
                self._context = client_context(self.level, self.connection.tls.ca, self._files_locked())
            return self._context

    def files(self) -> TlsFiles:
        with self._lock:
            return self._files_locked()

    def _files_locked(self) -> TlsFiles:
        if self._files is None:
            c = self.credentials
            self._files = TlsFiles.write(self.connection.tls.ca, c.client_cert, c.client_key)
        return self._files

    def connect_cloudsql(self, driver: str) -> Any:
        """A catalog connection through Google's Cloud SQL connector (it does TLS itself)."""
        c = self.connection
        assert c.cloudsql is not None
        if self._cloudsql is None:
            raise SourceConnectionError(f"{c.label}: this process has no Cloud SQL connector")
        return self._cloudsql.connect(
            c.cloudsql.instance,
            driver,
            user=c.user,
            password=None if c.cloudsql.iam else self.credentials.password,
            db=c.database,
            ip_type=c.cloudsql.ip_type,
            enable_iam_auth=c.cloudsql.iam,
            timeout=self.settings.connect_timeout,
        )

    def bulk_password(self) -> str:
        """IAM database login over the socket takes a fresh access token as its password."""
        cloudsql = self.connection.cloudsql
        if cloudsql is not None and cloudsql.iam and self._cloudsql is not None:
            return self._cloudsql.login_token()
        return self.credentials.password

    def close(self) -> None:
        with self._lock:
            tunnel, files = self._tunnel, self._files
            self._tunnel = self._files = self._context = None
        if tunnel is not None:
            tunnel.close()
        if files is not None:
            files.remove()


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
