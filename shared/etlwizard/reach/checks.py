"""Test connection, step by step: name resolution, TCP, the SSH bastion, TLS, login and catalog
permission, each with its result and, where one fails, the one thing to fix.

Each step is bounded by the connect timeout. A failure raises the step's own error (its HTTP status:
502 for the network, 401 for a login, 409 for a host key to confirm) with every step's result in its
details, so the wizard can show the checklist either way.
"""

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import (
    EtlError,
    HostKeyChanged,
    HostKeyUnconfirmed,
    SourceAuthError,
    SourceConnectionError,
    SshFailed,
    TlsFailed,
)
from ..model import Connection
from ..sources.base import Source
from ..sources.sql import SqlSource
from .options import MODE_NAMES, TlsMode

TITLES = {
    "resolve": "Name resolution",
    "tcp": "TCP connection",
    "ssh": "SSH bastion",
    "connector": "Cloud SQL connector",
    "tls": "TLS",
    "auth": "Login",
    "catalog": "Catalog permission",
}


@dataclass
class Step:
    step: str
    title: str
    status: str = "skipped"  # ok | failed | skipped | confirm | warning
    detail: str = ""
    fix: str | None = None
    fingerprint: str | None = None  # the bastion's host key, to confirm

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def steps_for(connection: Connection) -> list[str]:
    if connection.type == "bigquery":
        return ["auth", "catalog"]
    if connection.cloudsql is not None:
        return ["connector", "auth", "catalog"]
    first = ["resolve", "tcp"] + (["ssh"] if connection.ssh is not None else [])
    return first + ["tls", "auth", "catalog"]


def check(source: Source) -> dict[str, Any]:
    """Run the steps in order; the first that fails ends the test (the rest stay skipped)."""
    c = source.connection
    steps = {name: Step(name, TITLES[name]) for name in steps_for(c)}
    timeout = source.settings.connect_timeout
    current = ""
    try:
        if "resolve" in steps:
            current = "resolve"
            host, port = (c.ssh.host, c.ssh.port) if c.ssh is not None else (c.host, c.port or 0)
            addresses = _resolve(c.label, host, port, timeout)
            _ok(steps["resolve"], f"{host} is {', '.join(sorted({str(a[4][0]) for a in addresses}))}")
            current = "tcp"
            _tcp(c.label, host, port, timeout)
            _ok(steps["tcp"], f"{host}:{port} accepts connections")
        if "ssh" in steps and isinstance(source, SqlSource):
            current = "ssh"
            source.route.endpoint()
            assert c.ssh is not None
            _ok(
                steps["ssh"],
                f"logged in to {c.ssh.host} as {c.ssh.user}, host key {c.ssh.host_key}; it reaches {c.where}",
            )
        current = "connector" if "connector" in steps else "tls" if "tls" in steps else "auth"
        version = source.test()
        if "connector" in steps:
            _ok(steps["connector"], f"reached {c.where} through Google's connector (TLS by the connector)")
        if "tls" in steps and isinstance(source, SqlSource):
            in_use = source.tls_in_use()
            if in_use:
                _ok(steps["tls"], f"{c.tls.mode}: {in_use}")
            else:
                steps["tls"].status = "warning" if c.tls.level(c.type) > TlsMode.DISABLE else "skipped"
                steps["tls"].detail = f"{c.tls.mode}: plaintext; anyone on the network path can read the data"
        _ok(steps["auth"], f"logged in as {c.user or 'the credentials given'}: {version}")
        current = "catalog"
        tables = source.list_tables()
        if tables:
            _ok(steps["catalog"], f"{len(tables)} tables and views this user may read")
        else:
            steps["catalog"].status = "warning"
            steps["catalog"].detail = "no table this user may read"
            steps["catalog"].fix = _catalog_fix(c)
    except EtlError as e:
        step = steps[_failed_step(e, current, steps, c)]
        if isinstance(e, HostKeyUnconfirmed):
            step.status, step.fingerprint = "confirm", e.fingerprint
        else:
            step.status = "failed"
        step.detail = e.message
        step.fix = _fix(step.step, e, c)
        e.details = [s.to_dict() for s in steps.values()]
        raise
    return {"connection_id": c.id, "server_version": version, "steps": [s.to_dict() for s in steps.values()]}


def _ok(step: Step, detail: str) -> None:
    step.status, step.detail = "ok", detail


def _resolve(label: str, host: str, port: int, timeout: float) -> list[Any]:
    """getaddrinfo, bounded: it has no timeout of its own."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(timeout)
    except FutureTimeout:
        raise SourceConnectionError(f"{label}: cannot resolve {host}: no answer within {timeout:g} s") from None
    except socket.gaierror as e:
        raise SourceConnectionError(f"{label}: cannot resolve {host} ({e.strerror})") from None
    finally:
        pool.shutdown(wait=False)


def _tcp(label: str, host: str, port: int, timeout: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        raise SourceConnectionError(f"{label}: cannot reach {host}:{port}: no answer within {timeout:g} s") from None
    except OSError as e:
        raise SourceConnectionError(f"{label}: cannot reach {host}:{port} ({e.strerror or e})") from None


def _failed_step(error: EtlError, current: str, steps: dict[str, Step], c: Connection) -> str:
    """Which step a failure of connecting and logging in belongs to: a refused login means the TLS
    handshake before it went through (if there was one)."""
    if current in ("tls", "connector") and isinstance(error, SourceAuthError):
        if "tls" in steps and c.tls.level(c.type) > TlsMode.DISABLE:
            steps["tls"].status, steps["tls"].detail = "ok", "the server accepted the handshake"
        elif "tls" in steps:
            steps["tls"].detail = f"{c.tls.mode}: plaintext"
        if "connector" in steps:
            _ok(steps["connector"], "the connector reached the instance")
        return "auth"
    if current == "tls" and not isinstance(error, TlsFailed):
        return "auth"
    return current


def _fix(step: str, error: EtlError, c: Connection) -> str:
    text = error.message.lower()
    if step == "resolve":
        return "Check the host name; a private name resolves only inside its network (infra/: VPC egress)."
    if step == "tcp":
        if "refused" in text:
            return "Nothing listens there: check the port, and that the server listens on this address."
        return "A firewall drops the traffic: allow this service's address, or go through a bastion or Cloud SQL."
    if step == "ssh":
        if isinstance(error, HostKeyUnconfirmed):
            return "Compare it with the bastion's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then trust it."
        if isinstance(error, HostKeyChanged):
            return "If the bastion was rebuilt, confirm its new key; otherwise someone may be in between: stop here."
        if isinstance(error, SourceAuthError):
            user = c.ssh.user if c.ssh else ""
            return f"Add this connection's public key to ~{user}/.ssh/authorized_keys on the bastion."
        if isinstance(error, SshFailed) and "reach" in text and c.host in error.message:
            return f"The bastion cannot reach {c.where}: check the database host as the bastion sees it."
        return "Check the bastion's host and port, and that it allows TCP forwarding."
    if step == "tls":
        names = MODE_NAMES.get(c.type, ())
        if "does not offer tls" in text:
            return f"Turn TLS on at the server, or choose {names[0]} only on a network you trust."
        if "hostname mismatch" in text:
            return f"Connect with the name on the certificate, or choose {names[3]} (checks the CA only)."
        if "unknown ca" in text:
            return "Upload the CA certificate that signed the server's certificate."
        if "expired" in text:
            return "The server's certificate must be renewed."
        return "Check the server's TLS settings and the certificates given."
    if step == "connector":
        return "Check the instance name, and that the service account has roles/cloudsql.client."
    if step == "auth":
        if isinstance(error, SourceAuthError):
            if c.tls.level(c.type) == TlsMode.DISABLE and ("encryption" in text or "ssl" in text):
                return f"The server wants TLS: choose {MODE_NAMES[c.type][TlsMode.REQUIRE]} or higher."
            if c.tls.client_certificate or "certificate" in text:
                return "Check the user, password and client certificate (its CN must be the user for cert login)."
            return "Check the user and password, and that the server lets this user in from this address."
        return "Check the database name and the server's log."
    return _catalog_fix(c)


def _catalog_fix(c: Connection) -> str:
    if c.type == "postgresql":
        return f"GRANT USAGE ON SCHEMA ... and GRANT SELECT ON ALL TABLES IN SCHEMA ... TO {c.user}."
    if c.type == "mysql":
        return f"GRANT SELECT ON {c.database}.* TO '{c.user}'."
    return "Grant the BigQuery Data Viewer role on the datasets to read."
