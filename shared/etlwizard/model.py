"""The things the product talks about: connections, columns, table previews.

Each `from_payload` validates a request body and raises InvalidInput naming the bad field.
"""

import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .errors import InvalidInput
from .payload import require_choice, require_object, require_text
from .reach.options import (
    MODE_NAMES,
    VIA,
    CloudSql,
    Credentials,
    Ssh,
    Tls,
    TlsMode,
    host,
    parse_cloudsql,
    parse_ssh,
    parse_tls,
    port,
)

SOURCE_TYPES = ("postgresql", "mysql", "bigquery")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
_PROJECT = re.compile(r"[a-z][a-z0-9\-]{4,28}[a-z0-9]")
MAX_PASSWORD = 4096  # far above any real password; a megabyte one would only fill the secret store


@dataclass(frozen=True)
class Connection:
    """A saved source database. Its secrets are never here: they live in the secret store
    (Credentials). tls, via, ssh and cloudsql say how it is reached (reach/)."""

    id: str
    name: str
    type: str
    host: str = ""
    port: int | None = None
    database: str = ""
    user: str = ""
    project: str = ""
    created_at: str = ""
    tls: Tls = field(default_factory=Tls)
    via: str = "direct"  # direct | ssh | cloudsql
    ssh: Ssh | None = None
    cloudsql: CloudSql | None = None

    @classmethod
    def from_payload(cls, body: object) -> tuple["Connection", Credentials]:
        """Validate a create request; returns the connection and its secrets."""
        body = require_object(body)
        name = require_text(body, "name", max_length=100)
        kind = require_text(body, "type", max_length=20)
        if kind not in SOURCE_TYPES:
            raise InvalidInput("type", f"must be one of {', '.join(SOURCE_TYPES)}")
        password = body.get("password")
        password = "" if password is None else password
        if not isinstance(password, str):
            raise InvalidInput("password", "must be a string")
        if len(password) > MAX_PASSWORD or "\x00" in password:
            raise InvalidInput("password", f"must be at most {MAX_PASSWORD} characters, without NUL")
        made: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "name": name,
            "type": kind,
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        if kind == "bigquery":
            project = require_text(body, "project", max_length=30)
            if not _PROJECT.fullmatch(project):
                raise InvalidInput("project", "is not a valid Google Cloud project id")
            return cls(project=project, **made), Credentials(password=password)
        via = require_choice(body, "via", VIA, default="direct")
        ssh = cloudsql = None
        ssh_key = passphrase = ""
        if via == "cloudsql":
            cloudsql = parse_cloudsql(body)
            if cloudsql.iam and password:
                raise InvalidInput("password", "is not used with IAM database login (the service account logs in)")
            host_name, port_number = "", None
        else:
            host_name = host(body, "host")
            port_number = port(body.get("port"), DEFAULT_PORTS[kind])
            if via == "ssh":
                ssh, ssh_key, passphrase = parse_ssh(body)
        tls, client_cert, client_key = parse_tls(body, kind, host_name, via)
        connection = cls(
            host=host_name,
            port=port_number,
            database=require_text(body, "database", max_length=128),
            user=require_text(body, "user", max_length=128),
            tls=tls,
            via=via,
            ssh=ssh,
            cloudsql=cloudsql,
            **made,
        )
        return connection, Credentials(password, client_cert, client_key, ssh_key, passphrase)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Connection":
        doc = dict(doc)
        tls = doc.pop("tls", None)
        if tls is None and doc["type"] in MODE_NAMES:  # saved before TLS modes: what the drivers did then
            tls = {"mode": MODE_NAMES[doc["type"]][TlsMode.PREFER]}
        ssh, cloudsql = doc.pop("ssh", None), doc.pop("cloudsql", None)
        return cls(
            tls=Tls(**tls) if tls else Tls(),
            ssh=Ssh(**ssh) if ssh else None,
            cloudsql=CloudSql(**cloudsql) if cloudsql else None,
            **doc,
        )

    def to_doc(self) -> dict[str, Any]:
        """As the job store keeps it (no secret is in a Connection)."""
        return asdict(self)

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it."""
        shown = {**asdict(self), "tls": self.tls.to_dict(), "security": self.security}
        if self.type == "bigquery":
            for name in ("host", "port", "database", "user", "tls", "via", "ssh", "cloudsql"):
                shown.pop(name)
        return shown

    def with_host_key(self, fingerprint: str) -> "Connection":
        assert self.ssh is not None
        return replace(self, ssh=replace(self.ssh, host_key=fingerprint))

    @property
    def label(self) -> str:
        return f"connection '{self.name}'"

    @property
    def where(self) -> str:
        """host:port, or the Cloud SQL instance: where messages say the database is."""
        if self.cloudsql is not None:
            return f"Cloud SQL instance {self.cloudsql.instance}"
        return f"{self.host}:{self.port}"

    @property
    def security(self) -> str:
        """How the connection is secured, at a glance: "verify-full", "require, via bastion",
        "Cloud SQL, private IP, IAM login"."""
        if self.type == "bigquery":
            return "Google API (TLS)"
        if self.cloudsql is not None:
            parts = ["Cloud SQL", f"{self.cloudsql.ip_type} IP"] + (["IAM login"] if self.cloudsql.iam else [])
            return ", ".join(parts)
        parts = [self.tls.mode + (" + client certificate" if self.tls.client_certificate else "")]
        if self.ssh is not None:
            parts.append("via bastion" + ("" if self.ssh.host_key else " (host key not confirmed)"))
        return ", ".join(parts)


@dataclass(frozen=True)
class TableRef:
    schema_name: str
    table_name: str

    @classmethod
    def from_payload(cls, body: object) -> "TableRef":
        body = require_object(body)
        return cls(
            schema_name=require_text(body, "schema_name", max_length=1024),
            table_name=require_text(body, "table_name", max_length=1024),
        )


@dataclass
class Column:
    name: str
    source_type: str
    bigquery_type: str
    nullable: bool
    mode: str = "NULLABLE"  # NULLABLE | REQUIRED | REPEATED, as in a BigQuery schema
    is_primary_key: bool = False
    is_timestamp_candidate: bool = False
    warning: str | None = None
    # What recommend_timestamp_column weighs; not part of the contract's column fields.
    indexed: bool = field(default=False, repr=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Column":
        """A column as to_dict wrote it (a job keeps its columns so)."""
        return cls(**{k: v for k, v in doc.items() if k in _COLUMN_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "source_type": self.source_type,
            "bigquery_type": self.bigquery_type,
            "mode": self.mode,
            "nullable": self.nullable,
            "is_primary_key": self.is_primary_key,
            "is_timestamp_candidate": self.is_timestamp_candidate,
        }
        if self.warning:
            out["warning"] = self.warning
        return out


_COLUMN_FIELDS = (
    "name",
    "source_type",
    "bigquery_type",
    "nullable",
    "mode",
    "is_primary_key",
    "is_timestamp_candidate",
    "warning",
)


@dataclass
class TableMetadata:
    schema_name: str
    table_name: str
    columns: list[Column]
    primary_key: list[str]
    # Unique indexes whose columns are all NOT NULL: a fallback key when there is no declared PK.
    unique_keys: list[list[str]] = field(default_factory=list)
    kind: str = "table"  # table | view
    # The catalog's row estimate (None when it has none: views, tables never analysed).
    estimated_rows: int | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


BACKFILL_CHOICES = {"last_30_days": 30, "last_90_days": 90, "last_365_days": 365, "all": None, "custom": None}


def backfill_start(choice: object, custom: object, today: date) -> str | None:
    """The first day a transactional job loads: a date (ISO) or None for all history."""
    if not isinstance(choice, str) or choice not in BACKFILL_CHOICES:
        raise InvalidInput("historical_backfill", f"must be one of {', '.join(BACKFILL_CHOICES)}")
    if choice == "all":
        return None
    days = BACKFILL_CHOICES[choice]
    if days is not None:
        return (today - timedelta(days=days)).isoformat()
    try:
        start = (
            date.fromisoformat(custom)
            if isinstance(custom, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", custom)
            else None
        )
    except ValueError:
        start = None
    if start is None:
        raise InvalidInput("historical_start_date", "must be a date as YYYY-MM-DD")
    if start > today:
        raise InvalidInput("historical_start_date", f"{start} is in the future")
    return start.isoformat()


# BigQuery's flexible column names (README, "API"), which the emulator takes too: letters, marks,
# digits, connector punctuation (_) and dashes of any script, spaces and & % = + : ' < > # |; at most
# 300 characters; not one of the prefixes BigQuery keeps for its own pseudo-columns.
_NAME_CATEGORIES = ("L", "M", "N", "Pc", "Pd")
_NAME_EXTRAS = frozenset(" &%=+:'<>#|")
_RESERVED_PREFIXES = ("_table_", "_file_", "_partition", "_row_timestamp", "__root__", "_colidentifier")
MAX_COLUMN_NAME = 300


def column_name_problem(name: str) -> str | None:
    """Why BigQuery would refuse `name` as a column name, or None if it takes it. The one place this
    rule lives: job creation, edits and reconnects refuse such a column, the preview warns of it."""
    if not name:
        return "BigQuery column names cannot be empty"
    if len(name) > MAX_COLUMN_NAME:
        return f"BigQuery column names have at most {MAX_COLUMN_NAME} characters"
    bad = sorted(
        {c for c in name if c not in _NAME_EXTRAS and not unicodedata.category(c).startswith(_NAME_CATEGORIES)}
    )
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"BigQuery column names cannot hold {shown} (letters, digits, _, -, spaces and &%=+:'<># | only)"
    prefix = next((p for p in _RESERVED_PREFIXES if name.lower().startswith(p)), None)
    if prefix:
        return f"BigQuery keeps names starting with {prefix.upper()} for itself"
    return None


def default_table_name(table_name: str) -> str:
    """The destination table a job suggests for a source table: BigQuery's characters, lower case."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", table_name).strip("_").lower() or "table"


def source_id(connection: "Connection", schema_name: str, table_name: str) -> str:
    """Names where rows come from, stable across a new connection to the same database (credential
    rotation), distinct for two databases loading one table."""
    if connection.type == "bigquery":
        return f"bigquery://{connection.project}/{schema_name}.{table_name}"
    return f"{connection.type}://{connection.host}:{connection.port}/{connection.database}/{schema_name}.{table_name}"
