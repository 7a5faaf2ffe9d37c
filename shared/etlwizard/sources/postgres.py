"""PostgreSQL: pg8000 for the catalog, previews and tables with arrays, ADBC for loads."""

import re
import socket
import ssl
import struct
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_postgresql
import pg8000.dbapi
import pg8000.exceptions
from adbc_driver_manager._reader import AdbcRecordBatchReader

from ..errors import EtlError, NotFound, SourceAuthError, SourceConnectionError, SourceQueryError, TlsFailed
from ..model import Column, TableMetadata
from ..reach.options import TlsMode
from ..reach.tls import describe, system_ca_file
from ..typemap import postgres_type
from .base import Bound, Row, make_column
from .sql import SqlSource

_RELKINDS = {"r": "table", "p": "table", "f": "table", "v": "view", "m": "view"}
# The server's own schemas, as _TABLES leaves them out: no preview or job reads them.
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")  # and pg_toast*, TOAST tables' schemas

_TABLES = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY 1, 2
"""

_TABLE = """
SELECT c.oid, c.relkind, c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
"""

# Enums map as "enum", domains as their base type; source_type keeps the name the user knows.
_COLUMNS = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'e' THEN 'enum'
            WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            WHEN et.typtype = 'e' THEN 'enum[]'
            ELSE format_type(a.atttypid, a.atttypmod) END,
       NOT (a.attnotnull OR t.typnotnull)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_INDEXES = """
SELECT i.indisprimary, i.indisunique, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = {oid} AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary, i.indisunique
ORDER BY i.indisprimary DESC, i.indexrelid
"""


class PostgresSource(SqlSource):
    type = "postgresql"
    engine = "PostgreSQL"
    _reading: Any = None  # the ADBC cursor of a bulk read in progress, for cancel()

    def _connect(self) -> Any:
        c = self.connection
        try:
            if c.cloudsql is not None:
                db = self.route.connect_cloudsql("pg8000")
            else:
                endpoint = self.route.endpoint()
                sock = self.open_socket(endpoint.address, endpoint.port)
                try:
                    sock = negotiate_tls(sock, endpoint.host, self.route.level, self.route.ssl_context())
                    db = pg8000.dbapi.connect(
                        user=c.user,
                        password=self.credentials.password or None,
                        database=c.database,
                        sock=sock,
                        ssl_context=False,  # negotiated above
                        application_name="etl-wizard",
                    )
                except BaseException:
                    sock.close()
                    raise
        except TlsFailed as e:
            raise TlsFailed(f"{c.label}: {e.message}") from None
        except EtlError:
            raise
        except Exception as e:
            raise self._convert_error(e) from None
        db._usock.settimeout(self.settings.query_timeout)
        db.autocommit = True
        return db

    def _socket(self, db: Any) -> int:
        fileno: int = db._usock.fileno()  # the socket _connect gave pg8000 (private, stable since 1.x)
        return fileno

    def _session_survives(self, error: BaseException) -> bool:
        # pg8000 raises the server's error after reading up to ReadyForQuery: the session is in step
        server = _server_error(error)
        return server is not None and not server[0].startswith(("08", "57P"))

    def _convert_error(self, error: BaseException) -> Exception:
        c = self.connection

        def lost(detail: str) -> Exception:
            return SourceConnectionError(f"{c.label}: lost the connection to PostgreSQL at {c.where} ({detail})")

        server = _server_error(error)
        if server is not None:
            code, message = server[0], self.scrub(server[1])
            if code.startswith("28"):
                return SourceAuthError(f"{c.label}: PostgreSQL refused user '{c.user}': {message}")
            if code == "3D000":
                return SourceConnectionError(f"{c.label}: {message}")
            if code.startswith(("08", "57P")):  # connection failures, the server shutting down or ending ours
                return lost(message)
            if code == "42P01":
                return NotFound(f"{c.label}: {message}")
            return SourceQueryError(f"{c.label}: PostgreSQL error {code}: {message}")
        if isinstance(error, ssl.SSLError):
            return TlsFailed(f"{c.label}: {describe(error)}")
        if isinstance(error, adbc_driver_manager.OperationalError) and "SSL" in str(error):
            return TlsFailed(f"{c.label}: the bulk reader's TLS handshake failed ({self.scrub(str(error)).strip()})")
        if isinstance(error, (OSError, pg8000.exceptions.InterfaceError, adbc_driver_manager.OperationalError)):
            return lost(self.scrub(str(error)).strip())
        return SourceQueryError(f"{c.label}: {self.scrub(str(error))}")

    def test(self) -> str:
        version: str = self.query("SELECT version()")[0][0]
        return version

    def tls_in_use(self) -> str | None:
        found = self.query("SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl")
        return f"{found[0][0]}, {found[0][1]}" if found else None

    def list_tables(self) -> list[dict[str, str]]:
        return [{"schema_name": s, "table_name": t, "kind": _RELKINDS[k]} for s, t, k in self.query(_TABLES)]

    def fetch_table_metadata(self, schema_name: str, table_name: str) -> TableMetadata:
        system = schema_name in _SYSTEM_SCHEMAS or schema_name.startswith("pg_toast")
        found = [] if system else self.query(_TABLE, (schema_name, table_name))
        if not found:
            raise NotFound(f"table {schema_name}.{table_name} does not exist in {self.connection.label}")
        oid, relkind, reltuples = found[0]
        # The oid is an integer the catalog returned, written into the SQL: pg8000 takes three round
        # trips for a statement with parameters, one without.
        indexes = self.query(_INDEXES.format(oid=int(oid)))
        primary_key: list[str] = next((cols for is_pk, _, cols in indexes if is_pk), [])
        leading = {cols[0] for _, _, cols in indexes}
        columns = [
            make_column(
                name,
                source_type,
                postgres_type(base_type),
                nullable,
                is_primary_key=name in primary_key,
                indexed=name in leading,
            )
            for name, source_type, base_type, nullable in self.query(_COLUMNS.format(oid=int(oid)))
        ]
        not_null = {c.name for c in columns if not c.nullable}
        unique_keys = [cols for is_pk, unique, cols in indexes if unique and not is_pk and set(cols) <= not_null]
        return TableMetadata(
            schema_name,
            table_name,
            columns,
            list(primary_key),
            unique_keys,
            kind=_RELKINDS[relkind],
            estimated_rows=reltuples if reltuples and reltuples > 0 else None,
        )

    def cursor_now(self, cursor: Column) -> date | datetime:
        kind = {"TIMESTAMP": "now()", "DATETIME": "localtimestamp", "DATE": "current_date"}[cursor.bigquery_type]
        now: date | datetime = self.query(f"SELECT {kind}")[0][0]
        return now

    def stream(self, sql: str, batch_size: int) -> Iterator[Sequence[Row]]:
        """A server-side cursor in a read-only transaction, FETCHed a batch at a time, on a connection
        of its own: the read lasts as long as the run takes its rows, longer than a pooled
        connection may be held. Closing the connection ends the transaction."""
        db = self._connect()
        cursor = db.cursor()
        try:
            cursor.execute("BEGIN READ ONLY")
            cursor.execute(f"DECLARE etl_rows NO SCROLL CURSOR FOR {sql}")
            while True:
                cursor.execute(f"FETCH FORWARD {int(batch_size)} FROM etl_rows")
                rows = cursor.fetchall()
                if not rows:
                    return
                yield rows
        except Exception as e:
            raise self._convert_error(e) from None
        finally:
            try:
                db.close()
            except Exception:
                pass

    def bulk_batches(self, sql: str, batch_size: int) -> Iterator[Any]:
        """Apache Arrow's ADBC driver (C, libpq): COPY ... TO STDOUT (FORMAT binary) decoded straight
        into Arrow, about 16 MB a batch, read only as fast as the run takes them."""
        try:
            with adbc_postgresql.connect(self.conninfo(), autocommit=True) as db, db.cursor() as cursor:
                self._reading = cursor
                cursor.execute(sql)
                # ADBC's own reader class: the plain pyarrow reader fetch_record_batch() returns
                # drops a failure's SQLSTATE (apache/arrow-adbc#1523)
                stream = cursor.fetch_arrow()  # held: freeing it releases the stream
                yield from AdbcRecordBatchReader._import_from_c(stream.address)
        except adbc_driver_manager.Error as e:
            raise self._convert_error(e) from None
        finally:
            self._reading = None

    def cancel(self) -> None:
        """Cancel the bulk read in progress (libpq's cancel request), from another thread."""
        reading = self._reading
        if reading is not None:
            reading.adbc_cancel()

    def conninfo(self) -> str:
        """libpq's connection string for the bulk reader, from the route: the same host, TLS mode,
        certificates (as files) and tunnel as the catalog driver's."""
        c, route = self.connection, self.route
        endpoint = route.bulk_endpoint()
        assert endpoint is not None  # bulk_unavailable says so first
        params: dict[str, Any] = {
            "dbname": c.database,
            "user": c.user,
            "password": route.bulk_password(),
            "connect_timeout": int(self.settings.connect_timeout),
            "application_name": "etl-wizard",
            # TCP keepalives: a server gone silent mid-read fails the run within about a minute
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        if endpoint.socket:  # Cloud SQL's socket: the proxy behind it encrypts
            params.update(host=endpoint.socket, sslmode="disable")
        else:
            params.update(host=endpoint.host, port=endpoint.port, sslmode=c.tls.mode)
            if endpoint.tunnelled:  # TCP to the tunnel, the certificate checked against the host
                params["hostaddr"] = endpoint.address
            level = route.level
            if level >= TlsMode.VERIFY_CA:
                params["sslrootcert"] = route.files().ca or system_ca_file()
            if c.tls.client_certificate:
                files = route.files()
                params.update(sslcert=files.cert, sslkey=files.key)
        return " ".join(f"{k}={_conninfo_value(v)}" for k, v in params.items() if v != "")

    def bulk_unavailable(self, columns: list[Column]) -> str | None:
        if any(c.mode == "REPEATED" for c in columns):
            return "the bulk reader's arrays arrive as text"
        if self.route.bulk_endpoint() is None:
            return "the Cloud SQL instance's socket is not mounted here (infra/: cloudsql_instances)"
        return None

    def bulk_expression(self, column: Column) -> str:
        """Numerics, reals, times of day and JSON as text Arrow parses exactly (the server's text
        is cheaper than decoding the binary forms; real widens 1.1 to 1.100000023841858 as a double,
        and a time of '24:00:00' must fail, not pass as a value BigQuery has not). Dates and
        timestamps arrive binary; conform() rejects infinity and BC."""
        if column.bigquery_type in ("NUMERIC", "BIGNUMERIC", "TIME", "JSON") or column.source_type == "real":
            return f"({self.select_expression(column)})::text"
        return self.select_expression(column)

    def bound_literal(self, value: Bound, kind: str) -> str:
        literal = super().bound_literal(value, kind)
        if isinstance(value, int):
            return literal
        return f"{literal}::{ {'TIMESTAMP': 'timestamptz', 'DATETIME': 'timestamp', 'DATE': 'date'}[kind] }"

    def select_expression(self, column: Column) -> str:
        name = self.quote(column.name)
        if column.source_type == "money":
            return f"{name}::numeric"
        # Enums, inet, interval, uuid, unknown types as text; JSON as the server's text too, which
        # keeps its numbers as written (pg8000 would parse them into floats).
        if column.bigquery_type in ("STRING", "JSON"):
            return f"{name}::text[]" if column.mode == "REPEATED" else f"{name}::text"
        return name


_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest message


def negotiate_tls(sock: socket.socket, host: str, level: TlsMode, context: ssl.SSLContext | None) -> socket.socket:
    """PostgreSQL's TLS negotiation as libpq's sslmode does it, for pg8000 (which would make a
    context per connection and load the system's CA certificates into it, 45 ms of CPU each):
    plaintext for disable, TLS when offered for prefer, TLS or nothing from require up."""
    if level == TlsMode.DISABLE or context is None:
        return sock
    sock.sendall(_SSL_REQUEST)
    answer = sock.recv(1)
    if answer == b"S":
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as e:
            raise TlsFailed(describe(e)) from None
    if answer != b"N":
        raise pg8000.exceptions.InterfaceError(f"the server answered a TLS request with {answer!r}")
    if level == TlsMode.PREFER:
        return sock
    raise TlsFailed("the server does not offer TLS, which this connection's mode requires")


def _conninfo_value(value: object) -> str:
    """A value in libpq's key=value syntax: quoted, with backslashes and quotes escaped."""
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _server_error(error: BaseException) -> tuple[str, str] | None:
    """(SQLSTATE, message) of an error the server reported, through pg8000 or ADBC."""
    if isinstance(error, pg8000.exceptions.DatabaseError) and error.args and isinstance(error.args[0], dict):
        return error.args[0].get("C", ""), error.args[0].get("M", "")
    if isinstance(error, adbc_driver_manager.Error) and error.sqlstate:
        # 'NOT_FOUND: Failed to prepare query: ERROR:  relation "x" does not exist\nLINE 1: ...'
        found = re.search(r"(?:ERROR|FATAL|PANIC):\s+(.*)", str(error))
        return error.sqlstate, found.group(1) if found else str(error)
    return None
