"""One root error; a subclass per cause, each knowing its HTTP status and whether a retry may help.

Adapters convert their driver's exceptions into these at their own boundary, so the entry points
only ever see an EtlError (anything else is a bug and answers a plain 500).
"""

from typing import Any


class EtlError(Exception):
    status = 500
    transient = False

    def __init__(self, message: str, *, details: list[Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        return {"status": "error", "message": self.message, "details": self.details}


class InvalidInput(EtlError):
    """A request field is missing or malformed; `field` names it."""

    status = 400

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}", details=[{"field": field, "problem": problem}])
        self.field = field


class TooLarge(EtlError):
    """A request body past the size limit."""

    status = 413


class NotFound(EtlError):
    status = 404


class Conflict(EtlError):
    status = 409


class SchemaIncompatible(EtlError):
    status = 400


class ConfigError(EtlError):
    status = 500


class SourceConnectionError(EtlError):
    """The source database cannot be reached (host down, port closed, timeout)."""

    status = 502
    transient = True


class TlsFailed(SourceConnectionError):
    """The TLS handshake failed or the server would not offer the TLS the connection's mode requires."""


class SshFailed(SourceConnectionError):
    """The SSH bastion could not be reached, refused the login, or could not reach the database."""


class HostKeyUnconfirmed(SshFailed):
    """The bastion's host key has not been confirmed yet: `fingerprint` is what it presented."""

    status = 409

    def __init__(self, message: str, fingerprint: str):
        super().__init__(message)
        self.fingerprint = fingerprint


class HostKeyChanged(SshFailed):
    """The bastion presented a host key other than the one confirmed: perhaps a machine in between."""

    transient = False


class PoolExhausted(SourceConnectionError):
    """Every pooled connection to a source stayed busy for the whole wait: overloaded, not down."""

    status = 503


class SourceAuthError(EtlError):
    """The source database refused the credentials."""

    status = 401


class SourceQueryError(EtlError):
    """The source accepted the connection but a catalog or data query failed."""

    status = 502
    transient = True


class DestinationError(EtlError):
    status = 502
    transient = True


class StoreError(EtlError):
    """The job store (Firestore) failed; a retry may succeed."""

    status = 503
    transient = True


class Interrupted(EtlError):
    """The run was stopped before it finished: its process is shutting down, or it lost its job's
    lease to a run that took over. Nothing was committed; a retry runs the window again."""

    status = 503
    transient = True
