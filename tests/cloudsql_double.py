"""A Cloud SQL connector for tests (nothing here can reach Google): CloudSqlDouble implements
etlwizard.reach.cloudsql.CloudSqlConnector, records every request, and answers each connect with a
REAL DB-API connection from the factory it is given, so a run through it works end to end against a
real database. The factories below connect over the database's Unix socket, as the bulk readers reach
a Cloud SQL instance through /cloudsql/<instance>; mount_socket lays such a directory out.

    double = CloudSqlDouble(pg8000_over_socket("/var/run/postgresql"))
    route = Route(connection, credentials, replace(settings, cloudsql_socket_dir=sockets), double)
"""

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg8000.dbapi
import pymysql

DRIVERS = ("pg8000", "pymysql")
IP_TYPES = ("public", "private", "psc")
TOKEN = "cloudsql-double-login-token"  # what login_token() answers unless told otherwise
POSTGRES_SOCKET_DIR = Path("/var/run/postgresql")  # Debian's PostgreSQL: .s.PGSQL.5432 in it
MARIADB_SOCKET = Path("/run/mysqld/mysqld.sock")  # Debian's MariaDB
MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path (sun_path, 108 with its NUL): use a short directory


@dataclass(frozen=True)
class CloudSqlRequest:
    """One connect, as the code asked for it."""

    instance: str
    driver: str
    user: str
    password: str | None
    db: str
    ip_type: str
    enable_iam_auth: bool
    timeout: float


Factory = Callable[[CloudSqlRequest], Any]


class CloudSqlDouble:
    """CloudSqlConnector for tests. `connect` checks the driver and IP type as the real adapter does,
    records the request in `requests`, and returns `factory(request)`: a real connection (or raises
    what the factory raises, e.g. an EtlError to play a refusal). `login_token` returns `token` and
    counts its calls in `token_calls`; `close` counts in `closed`."""

    def __init__(self, factory: Factory, *, token: str = TOKEN) -> None:
        self.factory = factory
        self.token = token
        self.requests: list[CloudSqlRequest] = []
        self.token_calls = 0
        self.closed = 0
        self._lock = threading.Lock()

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
        if driver not in DRIVERS:
            raise ValueError(f"no Cloud SQL driver {driver!r}: one of {', '.join(DRIVERS)}")
        if ip_type not in IP_TYPES:
            raise ValueError(f"no Cloud SQL IP type {ip_type!r}: one of {', '.join(IP_TYPES)}")
        request = CloudSqlRequest(instance, driver, user, password, db, ip_type, enable_iam_auth, timeout)
        with self._lock:
            self.requests.append(request)
        return self.factory(request)

    def login_token(self) -> str:
        with self._lock:
            self.token_calls += 1
        return self.token

    def close(self) -> None:
        with self._lock:
            self.closed += 1


def pg8000_over_socket(
    socket_dir: str | Path = POSTGRES_SOCKET_DIR, *, user: str | None = None, password: str | None = None
) -> Factory:
    """A factory of pg8000 connections over PostgreSQL's Unix socket in `socket_dir`, as the request
    asks (its user, password and database) unless `user`/`password` say otherwise (an IAM login's
    user is a service account, which a test's server does not know)."""
    path = str(Path(socket_dir) / ".s.PGSQL.5432")

    def connect(request: CloudSqlRequest) -> Any:
        if request.driver != "pg8000":
            raise ValueError(f"this double connects pg8000, not {request.driver}")
        return pg8000.dbapi.connect(
            user=user or request.user,
            password=password if password is not None else request.password,
            database=request.db,
            unix_sock=path,
            timeout=request.timeout,
        )

    return connect


def pymysql_over_socket(
    socket: str | Path = MARIADB_SOCKET, *, user: str | None = None, password: str | None = None
) -> Factory:
    """A factory of pymysql connections over MySQL's (MariaDB's) Unix socket `socket`."""

    def connect(request: CloudSqlRequest) -> Any:
        if request.driver != "pymysql":
            raise ValueError(f"this double connects pymysql, not {request.driver}")
        return pymysql.connect(
            unix_socket=str(socket),
            user=user or request.user,
            password=(password if password is not None else request.password) or "",
            database=request.db,
            connect_timeout=request.timeout,
            autocommit=True,
            charset="utf8mb4",
        )

    return connect


def mount_socket(socket_dir: Path, instance: str, kind: str, server_socket: str | Path | None = None) -> Path:
    """Lay out `socket_dir` as Cloud Run mounts /cloudsql: for PostgreSQL a directory <instance>
    holding .s.PGSQL.5432, for MySQL the socket <instance> itself; each a symbolic link to the local
    server's socket. Returns the instance's path (what Route.bulk_endpoint gives the bulk reader).
    `socket_dir` must be short (pytest's tmp_path is too long): a socket's path has at most 107 bytes."""
    path = socket_dir / instance
    longest = path / ".s.PGSQL.5432" if kind == "postgresql" else path
    if len(os.fsencode(longest)) > MAX_SOCKET_PATH:
        raise ValueError(f"{longest} is longer than a Unix socket's path may be ({MAX_SOCKET_PATH} bytes)")
    socket_dir.mkdir(parents=True, exist_ok=True)
    if kind == "postgresql":
        path.mkdir(exist_ok=True)
        target = Path(server_socket) if server_socket else POSTGRES_SOCKET_DIR / ".s.PGSQL.5432"
        os.symlink(target, path / ".s.PGSQL.5432")
    elif kind == "mysql":
        os.symlink(Path(server_socket) if server_socket else MARIADB_SOCKET, path)
    else:
        raise ValueError(f"no socket layout for {kind!r}: postgresql or mysql")
    return path
