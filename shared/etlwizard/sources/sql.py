"""What the SQL sources (PostgreSQL, MySQL) share: a DB-API connection, quoting, the SELECT of a
window, previews, counts, and the bulk path into Arrow. A subclass connects, reads its catalog,
and says how to quote and how its driver reads each type.
"""

import json
import logging
import re
import socket
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from .. import fingerprint
from ..columnar import conform
from ..config import Settings
from ..errors import SourceConnectionError, SourceQueryError
from ..model import Column, Connection, TableMetadata
from ..reach.cloudsql import CloudSqlConnector
from ..reach.options import Credentials
from ..reach.route import Route
from ..recommend import recommend_key
from ..values import to_json
from .base import ArrowBatch, Bound, Row, Source
from .pool import ConnectionPool, Pooled

log = logging.getLogger(__name__)


class SqlSource(Source):
    """A DB-API source: subclasses connect, read their catalog, and say how to quote."""

    quote_char = '"'
    engine: str  # the database's name in messages

    def __init__(
        self,
        connection: Connection,
        credentials: Credentials,
        settings: Settings,
        pool: ConnectionPool | None = None,
        cloudsql: CloudSqlConnector | None = None,
    ):
        super().__init__(connection, credentials, settings)
        # How every connection of this source reaches the database (reach/route.py): its tunnel
        # and certificate files live as long as the source.
        self.route = Route(connection, credentials, settings, cloudsql)
        # Each catalog statement borrows a connection from the saved connection's pool (pool.py);
        # a source opened without one (tests, benchmarks, a connection through a bastion, whose
        # connections end with its tunnel) has a pool of its own, closed with it.
        self._own_pool = pool is None
        self._pool = pool or ConnectionPool(connection.label, settings.pool_size, settings.connect_timeout)

    @abstractmethod
    def _connect(self) -> Any:
        """A DB-API connection (pg8000's or pymysql's, which share no types), with errors converted
        to Source*Error."""

    @abstractmethod
    def _socket(self, db: Any) -> int:
        """The file number of a connection's socket, which the pool watches while it is idle."""

    @abstractmethod
    def _convert_error(self, error: BaseException) -> Exception:
        """The driver's exception as a Source*Error with a readable message."""

    @abstractmethod
    def _session_survives(self, error: BaseException) -> bool:
        """Whether a connection may serve the next statement after this driver error: the server
        reported it and keeps the session, so no reply is left half read."""

    def open_socket(self, address: str, port: int) -> socket.socket:
        c = self.connection
        try:
            return socket.create_connection((address, port), timeout=self.settings.connect_timeout)
        except OSError as e:
            raise SourceConnectionError(
                f"{c.label}: cannot reach {self.engine} at {c.where} ({e.strerror or e})"
            ) from None

    @abstractmethod
    def tls_in_use(self) -> str | None:
        """The session's TLS version and cipher as the server reports them, or None: plaintext."""

    def close(self) -> None:
        if self._own_pool:
            self._pool.close()
        self.route.close()

    def _open_pooled(self) -> Pooled:
        db = self._connect()
        return Pooled(db, self._socket(db))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement on a pooled connection, lent for this statement only."""
        pooled = self._pool.take(self._open_pooled)
        healthy = False
        try:
            cursor = pooled.db.cursor()
            try:
                cursor.execute(sql, params)
                rows = list(cursor.fetchall())
            finally:
                cursor.close()
            healthy = True
            return rows
        except Exception as e:
            healthy = self._session_survives(e)
            raise self._convert_error(e) from None
        finally:
            self._pool.give(pooled, healthy)

    def scan(self, sql: str) -> list[Row]:
        """A statement that may read a whole table, on a connection of its own: pooled connections
        serve statements of milliseconds (catalog lookups, previews), so a run's long ones (a
        window's statistics over millions of rows) never keep a preview waiting for one."""
        db = self._connect()
        try:
            cursor = db.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        except Exception as e:
            raise self._convert_error(e) from None
        finally:
            try:
                db.close()
            except Exception:
                pass

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def table_sql(self, meta: TableMetadata) -> str:
        return f"{self.quote(meta.schema_name)}.{self.quote(meta.table_name)}"

    def select_expression(self, column: Column) -> str:
        """How a column is read; a source casts the types its driver cannot return faithfully."""
        return self.quote(column.name)

    def converter(self, column: Column) -> Callable[[Any], Any] | None:
        """A function turning this column's non-NULL driver values into the Python values its
        BigQuery type means, or None when the driver's values are right as they are."""
        return None

    def convert_rows(self, columns: list[Column], rows: Sequence[Row]) -> Sequence[Row]:
        converters = [(i, f) for i, c in enumerate(columns) if (f := self.converter(c)) is not None]
        if not converters:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for i, convert in converters:
                if values[i] is not None:
                    values[i] = convert(values[i])
            converted.append(values)
        return converted

    def sample_rows(self, meta: TableMetadata, limit: int) -> list[dict[str, Any]]:
        select = ", ".join(self.select_expression(c) for c in meta.columns)
        order = ", ".join(self.quote(k) for k in (meta.primary_key or recommend_key(meta)))
        sql = f"SELECT {select} FROM {self.table_sql(meta)}"
        if order:
            sql += f" ORDER BY {order}"
        sql += f" LIMIT {int(limit)}"
        rows = self.convert_rows(meta.columns, self.query(sql))
        return [{c.name: to_json(_readable(c, v)) for c, v in zip(meta.columns, row, strict=True)} for row in rows]

    def window_sql(self, cursor: Column | None, lower: Bound, upper: Bound) -> str:
        """WHERE lower <= cursor < upper (either bound None = open), or "" for every row."""
        if cursor is None:
            return ""
        name = self.quote(cursor.name)
        conditions = [f"{name} IS NOT NULL"]
        conditions += [
            f"{name} {op} {self.bound_literal(value, cursor.bigquery_type)}"
            for op, value in ((">=", lower), ("<", upper))
            if value is not None
        ]
        return " WHERE " + " AND ".join(conditions)

    def bound_literal(self, value: Bound, kind: str) -> str:
        """A window bound (an integer, date or datetime this code made, never request text) as SQL."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # a key range's bound
        if not isinstance(value, (date, datetime)):
            raise TypeError(f"a window bound must be a date, datetime or integer, not {type(value).__name__}")
        text = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
        if not _BOUND.fullmatch(text):  # a check that stays under `python -O`, unlike an assert
            raise ValueError(f"a window bound must be digits and date or time separators, not {text!r}")
        return f"'{text}'"

    def read_batches(
        self,
        meta: TableMetadata,
        columns: list[Column],
        cursor: Column | None,
        lower: Bound,
        upper: Bound,
        batch_size: int,
    ) -> Iterator[Sequence[Row]]:
        select = ", ".join(self.select_expression(c) for c in columns)
        sql = f"SELECT {select} FROM {self.table_sql(meta)}{self.window_sql(cursor, lower, upper)}"
        for rows in self.stream(sql, batch_size):
            yield self.convert_rows(columns, rows)

    def window_stats(self, meta: TableMetadata, column: Column, lower: Bound, upper: Bound) -> tuple[Any, Any, int]:
        name = self.quote(column.name)
        sql = f"SELECT MIN({name}), MAX({name}), COUNT(*) FROM {self.table_sql(meta)}"
        smallest, largest, count = self.scan(sql + self.window_sql(column, lower, upper))[0]
        ((smallest, largest),) = self.convert_rows([column, column], [(smallest, largest)])  # as bounds are
        return smallest, largest, count

    @abstractmethod
    def stream(self, sql: str, batch_size: int) -> Iterator[Sequence[Row]]:
        """Yield lists of about batch_size row tuples without holding the result in memory: the row
        path, which read_batches (and read_arrow where the bulk reader cannot read the columns) takes;
        errors converted to Source*Error."""

    # --- The bulk path: a reader in C or Rust turns the SELECT into Arrow, no row passes through Python.

    def bulk_expression(self, column: Column) -> str:
        """How the bulk reader selects a column: natively, or as text Arrow parses."""
        return self.select_expression(column)

    def bulk_unavailable(self, columns: list[Column]) -> str | None:
        """Why the bulk reader cannot read these columns over this connection the way its TLS mode
        asks (the run then takes the row path, on the catalog driver), or None."""
        return None

    @abstractmethod
    def bulk_batches(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield the SELECT's rows as Arrow record batches (of about batch_size rows, or of the
        reader's own size); errors converted to Source*Error."""

    def read_arrow(
        self,
        meta: TableMetadata,
        columns: list[Column],
        cursor: Column | None,
        lower: Bound,
        upper: Bound,
        batch_size: int,
        schema: pa.Schema,
    ) -> Iterator[ArrowBatch]:
        reason = self.bulk_unavailable(columns)
        if reason is not None:
            log.info(
                "%s: reading %s.%s on the row path: %s",
                self.connection.label,
                meta.schema_name,
                meta.table_name,
                reason,
            )
            yield from super().read_arrow(meta, columns, cursor, lower, upper, batch_size, schema)
            return
        select = ", ".join(self.bulk_expression(c) for c in columns)
        sql = f"SELECT {select} FROM {self.table_sql(meta)}{self.window_sql(cursor, lower, upper)}"
        try:
            for batch in self.bulk_batches(sql, batch_size):
                batch = conform(batch, schema)
                for start in range(0, batch.num_rows, batch_size):  # a reader may batch by bytes
                    yield batch.slice(start, batch_size), 0
        except pa.ArrowInvalid as e:  # e.g. 'infinity' timestamps, NaN numerics: no BigQuery value
            raise SourceQueryError(
                f"{self.connection.label}: a value of {meta.schema_name}.{meta.table_name} "
                f"has no BigQuery equivalent: {e}"
            ) from None

    def fingerprints(
        self, meta: TableMetadata, spec: fingerprint.Spec, cursor: Column | None, lower: Bound, upper: Bound
    ) -> dict[str, fingerprint.Bucket]:
        """The rows of a window (on `cursor`; None: all) whose key and cursor BigQuery holds as
        values, as fingerprinted buckets computed by the server (fingerprint.py): one scan, one row
        per bucket over the network."""
        present = " AND ".join(self.present(c) for c in spec.columns)
        window = self.window_sql(cursor, lower, upper)
        where = f"{window} AND {present}" if window else f" WHERE {present}"
        sql = fingerprint.query(self.type, spec, self.quote, self.table_sql(meta), where)  # type: ignore[arg-type]
        return fingerprint.buckets(self.scan(sql))

    def bucket_keys(self, meta: TableMetadata, spec: fingerprint.Spec, buckets: Sequence[str]) -> set[str]:
        """The canonical text of the keys in some buckets (a drill into the buckets that differ)."""
        engine: Any = self.type
        condition = fingerprint.bucket_condition(engine, spec, self.quote, buckets)
        present = " AND ".join(self.present(c) for c in spec.columns)
        sql = f"SELECT {fingerprint.key_text(engine, spec, self.quote)} FROM {self.table_sql(meta)}"
        return {row[0] for row in self.scan(f"{sql} WHERE {present} AND {condition}")}

    def present(self, column: Column) -> str:
        """A condition: the column holds a value that loads as one (not NULL)."""
        return f"{self.quote(column.name)} IS NOT NULL"

    def count_rows(self, meta: TableMetadata) -> int:
        count: int = self.query(f"SELECT COUNT(*) FROM {self.table_sql(meta)}")[0][0]
        return count

    def total_rows(self, meta: TableMetadata) -> tuple[int, bool]:
        estimate = meta.estimated_rows
        if estimate is not None and estimate > self.settings.exact_count_limit:
            return estimate, False
        return self.count_rows(meta), True


_BOUND = re.compile(r"[0-9:. +\-]+")


def _readable(column: Column, value: Any) -> Any:
    """JSON held as text (MariaDB's JSON is a LONGTEXT) shown as JSON in a preview."""
    if column.bigquery_type == "JSON" and isinstance(value, (str, bytes)):
        return json.loads(value)
    return value
