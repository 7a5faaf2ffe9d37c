"""The things the product talks about: connections, columns, table previews.

Each `from_payload` validates a request body and raises InvalidInput naming the bad field.
"""

import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .errors import InvalidInput
from .payload import require_object, require_text

SOURCE_TYPES = ("postgresql", "mysql", "bigquery")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,253}")
_PROJECT = re.compile(r"[a-z][a-z0-9\-]{4,28}[a-z0-9]")
MAX_PASSWORD = 4096  # far above any real password; a megabyte one would only fill the secret store


@dataclass(frozen=True)
class Connection:
    """A saved source database. The password is never here: it lives in the secret store."""

    id: str
    name: str
    type: str
    host: str = ""
    port: int | None = None
    database: str = ""
    user: str = ""
    project: str = ""
    created_at: str = ""

    @classmethod
    def from_payload(cls, body: object) -> tuple["Connection", str]:
        """Validate a create request; returns the connection and its password ("" is valid)."""
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
        fields: dict[str, Any] = {"host": "", "port": None, "database": "", "user": "", "project": ""}
        if kind == "bigquery":
            fields["project"] = require_text(body, "project", max_length=30)
            if not _PROJECT.fullmatch(fields["project"]):
                raise InvalidInput("project", "is not a valid Google Cloud project id")
        else:
            fields["host"] = require_text(body, "host", max_length=253)
            if not _HOST.fullmatch(fields["host"]):
                raise InvalidInput("host", "must be a host name or IP address")
            fields["port"] = _port(body.get("port"), DEFAULT_PORTS[kind])
            fields["database"] = require_text(body, "database", max_length=128)
            fields["user"] = require_text(body, "user", max_length=128)
        connection = cls(
            id=uuid.uuid4().hex[:12],
            name=name,
            type=kind,
            created_at=datetime.now(timezone.utc).isoformat(),
            **fields,
        )
        return connection, password

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Connection":
        return cls(**doc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return f"connection '{self.name}'"


def _port(value: object, default: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidInput("port", "must be a whole number from 1 to 65535")
    return value


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
