"""Bucketed fingerprints of a job's rows, computed inside each database so that no table crosses the
network to be checked (README, "Verification").

A row's fingerprint is the MD5 of a canonical text of its key and cursor, written the same by
PostgreSQL, MySQL and BigQuery for equal values: integers and decimals in their shortest decimal
form, dates and times as 'YYYY-MM-DD HH:MM:SS.ffffff' (timestamps in UTC), bytes in lowercase hex,
the parts joined by the unit separator (U+001F). A bucket sums two 32-bit slices of its rows' hashes
and counts them: equal for equal multisets of rows, whatever their order, and a row missing, added,
doubled or changed shows as a bucket that differs.

Buckets are the cursor's day for transactional jobs (what a run's windows cut), and a prefix of the
key's hash for catalog jobs (even buckets, whatever the keys).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from .model import Column

Engine = Literal["postgresql", "mysql", "bigquery"]
Quote = Callable[[str], str]  # the engine's identifier quoting
# The types a key or cursor may have to be fingerprinted (BigQuery's names).
FINGERPRINTED = frozenset(
    {"INT64", "STRING", "NUMERIC", "BIGNUMERIC", "DATE", "DATETIME", "TIMESTAMP", "BOOL", "BYTES"}
)


@dataclass(frozen=True)
class Bucket:
    rows: int
    sum1: int
    sum2: int


@dataclass(frozen=True)
class Spec:
    """What a job's rows are fingerprinted by: key columns and cursor (either may be empty), and how
    they are bucketed: the cursor's day, or the first `hex_digits` of the key's hash."""

    key: tuple[Column, ...]
    cursor: Column | None
    hex_digits: int = 0  # 0: by the cursor's day

    def __post_init__(self) -> None:
        for column in self.columns:
            if column.bigquery_type not in FINGERPRINTED:
                raise ValueError(f"column {column.name!r} ({column.bigquery_type}) cannot be fingerprinted")
        if not self.hex_digits and self.cursor is None:
            raise ValueError("buckets by day need a cursor")

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key + ((self.cursor,) if self.cursor is not None else ())


@dataclass(frozen=True)
class Window:
    """lower <= column < upper (None: open), as a run's windows are."""

    column: Column
    lower: date | datetime | None
    upper: date | datetime | None


@dataclass(frozen=True)
class Mismatch:
    bucket: str
    source: Bucket | None
    destination: Bucket | None

    def to_doc(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "source_rows": self.source.rows if self.source else 0,
            "destination_rows": self.destination.rows if self.destination else 0,
        }


def compare(source: dict[str, Bucket], destination: dict[str, Bucket]) -> list[Mismatch]:
    return [
        Mismatch(name, source.get(name), destination.get(name))
        for name in sorted(source.keys() | destination.keys())
        if source.get(name) != destination.get(name)
    ]


def buckets(rows: Sequence[Sequence[Any]]) -> dict[str, Bucket]:
    """A fingerprint query's rows (bucket, count, sum1, sum2) by bucket."""
    return {str(b): Bucket(int(n), int(s1), int(s2)) for b, n, s1, s2 in rows}


def query(engine: Engine, spec: Spec, quote: Quote, table_sql: str, where: str) -> str:
    """The SELECT of (bucket, rows, sum1, sum2) per bucket over `table_sql` `where` (SQL, "" for all)."""
    d = _DIALECTS[engine]
    text = d.join([_canonical(engine, quote(c.name), c) for c in spec.columns])
    inner = f"SELECT {d.md5(text)} AS m"
    if not spec.hex_digits:
        assert spec.cursor is not None
        inner += f", {_canonical(engine, quote(spec.cursor.name), spec.cursor)} AS c"
    bucket = d.substr("c", 1, 10) if not spec.hex_digits else d.substr("m", 1, spec.hex_digits)
    return (
        f"SELECT b, COUNT(*), SUM(h1), SUM(h2) FROM ("
        f"SELECT {bucket} AS b, {d.hex_int(d.substr('m', 17, 8))} AS h1, {d.hex_int(d.substr('m', 25, 8))} AS h2 "
        f"FROM ({inner} FROM {table_sql}{where}{d.fence}) r) f GROUP BY b"
    )


def key_text(engine: Engine, spec: Spec, quote: Quote) -> str:
    """The canonical text of the spec's columns, as SQL: a key compared across engines as text."""
    return _DIALECTS[engine].join([_canonical(engine, quote(c.name), c) for c in spec.columns])


def bucket_condition(engine: Engine, spec: Spec, quote: Quote, buckets: Sequence[str]) -> str:
    """A condition selecting the rows of some buckets (days or hex prefixes this module made): one
    scan for all the buckets a sweep drills into."""
    if not buckets or not all(set(b) <= set("0123456789abcdef-") for b in buckets):
        raise ValueError(f"not buckets: {buckets!r}")
    d = _DIALECTS[engine]
    listed = ", ".join(f"'{b}'" for b in buckets)
    if spec.hex_digits:
        text = d.join([_canonical(engine, quote(c.name), c) for c in spec.columns])
        return f"{d.substr(d.md5(text), 1, spec.hex_digits)} IN ({listed})"
    assert spec.cursor is not None
    return f"{d.substr(_canonical(engine, quote(spec.cursor.name), spec.cursor), 1, 10)} IN ({listed})"


@dataclass(frozen=True)
class _Dialect:
    md5_fn: str
    substr_fn: str
    join_sep: str
    fence: str = ""  # what keeps the planner from computing a row's hash once per use of it

    def md5(self, text: str) -> str:
        return self.md5_fn.format(text)

    def substr(self, text: str, start: int, length: int) -> str:
        return f"{self.substr_fn}({text}, {start}, {length})"

    def join(self, parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else self.join_sep.format(", ".join(parts))

    def hex_int(self, hex_text: str) -> str:
        raise NotImplementedError


class _Postgres(_Dialect):
    def hex_int(self, hex_text: str) -> str:
        return f"('x' || {hex_text})::bit(32)::bigint"


class _MySql(_Dialect):
    def hex_int(self, hex_text: str) -> str:
        return f"CAST(CONV({hex_text}, 16, 10) AS UNSIGNED)"


class _BigQuery(_Dialect):
    def hex_int(self, hex_text: str) -> str:
        return f"CAST(CONCAT('0x', {hex_text}) AS INT64)"


_DIALECTS: dict[str, _Dialect] = {
    "postgresql": _Postgres("md5({})", "substr", "concat_ws(chr(31), {})", " OFFSET 0"),
    "mysql": _MySql("MD5({})", "SUBSTRING", "CONCAT_WS(CHAR(31 USING utf8mb4), {})"),
    "bigquery": _BigQuery("TO_HEX(MD5({}))", "SUBSTR", "ARRAY_TO_STRING([{}], CODE_POINTS_TO_STRING([31]))"),
}

_TIME = {
    "postgresql": "'YYYY-MM-DD HH24:MI:SS.US'",
    "mysql": "'%Y-%m-%d %H:%i:%s.%f'",
    "bigquery": "'%Y-%m-%d %H:%M:%E6S'",
}


def _canonical(engine: Engine, q: str, column: Column) -> str:
    """The column's value as the text all three engines write for it."""
    kind = column.bigquery_type
    if engine == "postgresql":
        return {
            "INT64": f"{q}::text",
            "STRING": f"{q}::text",
            "NUMERIC": _decimal(engine, f"{q}::numeric::text"),
            "BIGNUMERIC": _decimal(engine, f"{q}::numeric::text"),
            "DATE": f"to_char({q}, 'YYYY-MM-DD')",
            "DATETIME": f"to_char({q}, {_TIME[engine]})",
            "TIMESTAMP": f"to_char({q} AT TIME ZONE 'UTC', {_TIME[engine]})",
            "BOOL": f"CASE WHEN {q} THEN 'true' ELSE 'false' END",
            "BYTES": f"encode({q}, 'hex')",
        }[kind]
    if engine == "mysql":  # sessions run in UTC: TIMESTAMP values are UTC already
        return {
            "INT64": f"CAST({q} + 0 AS CHAR)",  # + 0: BIT's number, not its bytes
            "STRING": f"CAST({q} AS CHAR)",
            "NUMERIC": _decimal(engine, f"CAST({q} AS CHAR)"),
            "BIGNUMERIC": _decimal(engine, f"CAST({q} AS CHAR)"),
            "DATE": f"DATE_FORMAT({q}, '%Y-%m-%d')",
            "DATETIME": f"DATE_FORMAT({q}, {_TIME[engine]})",
            "TIMESTAMP": f"DATE_FORMAT({q}, {_TIME[engine]})",
            "BOOL": f"IF({q} <> 0, 'true', 'false')",
            "BYTES": f"LOWER(HEX({q}))",
        }[kind]
    return {
        "INT64": f"CAST({q} AS STRING)",
        "STRING": q,
        "NUMERIC": _decimal(engine, f"CAST({q} AS STRING)"),
        "BIGNUMERIC": _decimal(engine, f"CAST({q} AS STRING)"),
        "DATE": f"FORMAT_DATE('%Y-%m-%d', {q})",
        "DATETIME": f"FORMAT_DATETIME({_TIME[engine]}, {q})",
        "TIMESTAMP": f"FORMAT_TIMESTAMP({_TIME[engine]}, {q}, 'UTC')",
        "BOOL": f"CAST({q} AS STRING)",
        "BYTES": f"TO_HEX({q})",
    }[kind]


def _decimal(engine: Engine, text: str) -> str:
    """A decimal's text without trailing zeros after the point (12.50 -> 12.5, 10.00 -> 10)."""
    if engine == "mysql":
        trimmed = f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text}))"
        return f"IF(LOCATE('.', {text}) > 0, {trimmed}, {text})"
    function = "strpos" if engine == "postgresql" else "STRPOS"
    return f"CASE WHEN {function}({text}, '.') > 0 THEN RTRIM(RTRIM({text}, '0'), '.') ELSE {text} END"
