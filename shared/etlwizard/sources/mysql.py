"""MySQL and MariaDB: pymysql for the catalog and previews, ConnectorX for loads."""

import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import connectorx
import pymysql
import pymysql.cursors
import pymysql.err

from ..errors import EtlError, NotFound, SourceAuthError, SourceConnectionError, SourceQueryError, TlsFailed
from ..model import Column, TableMetadata
from ..reach.options import TlsMode
from ..reach.tls import describe
from ..typemap import mysql_type
from .base import Bound, Row, make_column
from .sql import SqlSource

# The server's own schemas: the tables list leaves them out and no preview or job reads them.
# Compared in lower case: information_schema is found in any case, and so are the others where
# lower_case_table_names is set.
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# Column types the bulk reader takes as they are; the others it reads as text.
_NATIVE = {
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "year",
    "double",
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "enum",
    "json",
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
}

_TABLES = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
WHERE TABLE_SCHEMA NOT IN %s ORDER BY 1, 2
"""

_TABLE = """
SELECT TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
"""

_COLUMNS = """
SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES', DATA_TYPE
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
ORDER BY ORDINAL_POSITION
"""

_INDEXES = """
SELECT INDEX_NAME, NON_UNIQUE = 0, COLUMN_NAME, SUB_PART IS NOT NULL
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX
"""

# MariaDB stores JSON as LONGTEXT with a json_valid() check: that check is how it is told apart.
_JSON_CHECKS = """
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND CHECK_CLAUSE LIKE 'json\\_valid(%%'
"""

# MySQL error codes: access denied, unknown database, unknown table.
_AUTH_ERRORS = {1044, 1045, 1698}
_CONNECT_ERRORS = {2003, 2005, 2006, 2013, 1049}
# Server errors after which the server ends the session: shutting down, connection killed.
_SESSION_ENDING = {1053, 1927}


# ConnectorX's names for the TLS modes (its URL's ssl-mode)
_CONNECTORX_MODES = {
    TlsMode.DISABLE: "disabled",
    TlsMode.PREFER: "preferred",
    TlsMode.REQUIRE: "required",
    TlsMode.VERIFY_CA: "verify_ca",
    TlsMode.VERIFY_FULL: "verify_identity",
}


class MySqlSource(SqlSource):
    type = "mysql"
    engine = "MySQL"
    quote_char = "`"

    def _connect(self) -> "pymysql.connections.Connection[pymysql.cursors.Cursor]":
        c = self.connection
        db: pymysql.connections.Connection[pymysql.cursors.Cursor]
        try:
            if c.cloudsql is not None:
                db = self.route.connect_cloudsql("pymysql")
                db.query("SET time_zone = '+00:00'")
            else:
                db = self._connect_direct()
        except EtlError:
            raise
        except Exception as e:
            raise self._convert_error(e) from None
        # pymysql applies it to every later read (a private attribute: connect() has no such argument)
        db._read_timeout = self.settings.query_timeout  # type: ignore[attr-defined]
        return db

    def _connect_direct(self) -> "pymysql.connections.Connection[pymysql.cursors.Cursor]":
        """pymysql to the route's endpoint with the route's TLS: through a tunnel, the socket is
        opened here and pymysql is told the database's own host name, which TLS verifies."""
        c, route = self.connection, self.route
        endpoint = route.endpoint()
        level = route.level
        tls: dict[str, Any] = {"ssl_disabled": True} if level == TlsMode.DISABLE else {}
        if level >= TlsMode.REQUIRE:
            tls["ssl"] = route.ssl_context()  # pymysql refuses a server without TLS then
        db = pymysql.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=c.user,
            password=self.credentials.password,
            database=c.database,
            charset="utf8mb4",
            autocommit=True,
            # The handshake must answer within the connect timeout too, not just the TCP connect.
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.connect_timeout,
            write_timeout=self.settings.query_timeout,
            # UTC sessions: TIMESTAMP values arrive as UTC; zero dates arrive as text.
            init_command="SET time_zone = '+00:00'",
            program_name="etl-wizard",
            defer_connect=True,
            **tls,
        )
        sock = self.open_socket(endpoint.address, endpoint.port)
        try:
            db.connect(sock)
        except BaseException:
            sock.close()
            raise
        return db

    def _socket(self, db: Any) -> int:
        fileno: int = db._sock.fileno()  # pymysql's socket (private, stable since its first releases)
        return fileno

    def _session_survives(self, error: BaseException) -> bool:
        # Server errors (1000-1999) arrive as one complete packet; 2000 and up are pymysql's own
        code = error.args[0] if isinstance(error, pymysql.err.MySQLError) and error.args else None
        return isinstance(code, int) and 1000 <= code < 2000 and code not in _SESSION_ENDING

    def _convert_error(self, error: BaseException) -> Exception:
        c = self.connection
        code = error.args[0] if error.args and isinstance(error.args[0], int) else None
        message = self.scrub(str(error.args[1])) if len(error.args) > 1 else self.scrub(str(error))
        if code in _AUTH_ERRORS:
            return SourceAuthError(f"{c.label}: MySQL refused user '{c.user}': {message}")
        tls_error = _tls_cause(error)
        if tls_error is not None:
            return TlsFailed(f"{c.label}: {describe(tls_error)}")
        if code == 2026 or "SSL is required" in message:
            return TlsFailed(f"{c.label}: the server does not offer TLS, which this connection's mode requires")
        if code in _CONNECT_ERRORS or isinstance(error, OSError):
            return SourceConnectionError(f"{c.label}: cannot reach MySQL at {c.where} ({message})")
        if code == 1146:
            return NotFound(f"{c.label}: {message}")
        return SourceQueryError(f"{c.label}: MySQL error {code}: {message}")

    def test(self) -> str:
        version: str = self.query("SELECT VERSION()")[0][0]
        return version

    def tls_in_use(self) -> str | None:
        status = "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')"
        found: dict[str, str] = {row[0]: row[1] for row in self.query(status)}
        return f"{found['Ssl_version']}, {found['Ssl_cipher']}" if found.get("Ssl_cipher") else None

    def list_tables(self) -> list[dict[str, str]]:
        return [
            {"schema_name": s, "table_name": t, "kind": "view" if kind == "VIEW" else "table"}
            for s, t, kind in self.query(_TABLES, (_SYSTEM_SCHEMAS,))
        ]

    def fetch_table_metadata(self, schema_name: str, table_name: str) -> TableMetadata:
        system = schema_name.lower() in _SYSTEM_SCHEMAS
        found = [] if system else self.query(_TABLE, (schema_name, table_name))
        if not found:
            raise NotFound(f"table {schema_name}.{table_name} does not exist in {self.connection.label}")
        table_type, table_rows = found[0]
        keys: dict[str, tuple[bool, list[str]]] = {}
        for index, unique, column, partial in self.query(_INDEXES, (schema_name, table_name)):
            entry = keys.setdefault(index, (bool(unique) and not partial, []))
            entry[1].append(column)
        primary_key = keys.pop("PRIMARY", (True, []))[1]
        leading = {cols[0] for _, cols in keys.values()} | set(primary_key[:1])
        json_columns = {
            clause[len("json_valid(") :].strip("`)")
            for (clause,) in self.query(_JSON_CHECKS, (schema_name, table_name))
        }
        columns = []
        for name, column_type, nullable, _data_type in self.query(_COLUMNS, (schema_name, table_name)):
            mapped = mysql_type("json" if name in json_columns else column_type)
            source_type = "json" if name in json_columns else column_type
            columns.append(
                make_column(
                    name,
                    source_type,
                    mapped,
                    bool(nullable),
                    is_primary_key=name in primary_key,
                    indexed=name in leading,
                )
            )
        not_null = {c.name for c in columns if not c.nullable}
        unique_keys = [cols for unique, cols in keys.values() if unique and set(cols) <= not_null]
        return TableMetadata(
            schema_name,
            table_name,
            columns,
            primary_key,
            unique_keys,
            kind="view" if table_type == "VIEW" else "table",
            estimated_rows=table_rows if table_type != "VIEW" else None,
        )

    def cursor_now(self, cursor: Column) -> date | datetime:
        if cursor.bigquery_type == "TIMESTAMP":
            utc: datetime = self.query("SELECT UTC_TIMESTAMP(6)")[0][0]
            return utc.replace(tzinfo=timezone.utc)
        # DATETIME and DATE hold the server's local time: read the clock in the server's zone.
        local: datetime = self.query("SELECT CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)")[0][0]
        return local.date() if cursor.bigquery_type == "DATE" else local

    def stream(self, sql: str, batch_size: int) -> Iterator[Sequence[Row]]:
        """An unbuffered cursor (pymysql's SSCursor) on a connection of its own: rows arrive as the
        run takes them, the catalog connection stays free for other queries meanwhile, and closing
        the connection ends a read left early (closing the cursor would read the rest first)."""
        db = self._connect()
        cursor = db.cursor(pymysql.cursors.SSCursor)
        try:
            # The server waits for a slow consumer (a load in flight) as long as a run may take.
            cursor.execute(f"SET SESSION net_write_timeout = {int(self.settings.lease_seconds)}")
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch_size):
                yield rows
        except Exception as e:
            raise self._convert_error(e) from None
        finally:
            # pymysql has no way to drop an unbuffered result: its cursor's close() and the result's
            # destructor would read the rest from the server, or fail on the closed connection.
            result = cursor._result  # type: ignore[attr-defined]  # (private; untyped in the stubs)
            if result is not None:
                result.unbuffered_active = False
            cursor.close()
            db.close()

    reads_ahead = True  # ConnectorX buffers ahead of a slow consumer: runs read in slices

    def bulk_batches(self, sql: str, batch_size: int) -> Iterator[Any]:
        """ConnectorX (Rust, MySQL's binary protocol) into Arrow: about as fast as `mariadb --quick`,
        where pymysql parses every value in Python."""
        url = self.connectorx_url()
        session = ["SET time_zone = '+00:00'"]  # TIMESTAMPs as UTC
        try:
            if self.connection.ssh is not None:
                # Its streaming reader holds the GIL while it connects, and the SSH tunnel forwards
                # on a Python thread of this process: read the slice whole (reads are in slices).
                table = connectorx.read_sql(url, sql, return_type="arrow", pre_execution_query=session)
                yield from table.to_batches(batch_size)
                return
            yield from connectorx.read_sql(
                url, sql, return_type="arrow_stream", batch_size=batch_size, pre_execution_query=session
            )
        except BaseException as e:  # ConnectorX's errors, and its Rust panics (BaseException)
            if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
                raise
            if "waiting for connection" in str(e):  # its pool gave up connecting, after about 30 s
                raise SourceConnectionError(
                    f"{self.connection.label}: cannot open a reading connection: {self.scrub(str(e))}"
                ) from None
            raise self._convert_error(e) from None

    def connectorx_url(self) -> str:
        """The route's endpoint and TLS mode in ConnectorX's URL (it takes a CA file, not a client
        certificate: bulk_unavailable sends those connections to the row path)."""
        c, route = self.connection, self.route
        endpoint = route.bulk_endpoint()
        assert endpoint is not None
        password = route.bulk_password()
        credentials = quote(c.user, safe="") + (":" + quote(password, safe="") if password else "")
        # TCP keepalives: a server gone silent mid-read fails the run instead of holding it
        params = {
            "tcp_connect_timeout_ms": int(self.settings.connect_timeout * 1000),
            "tcp_keepalive_time_ms": 30000,
            # Its driver would switch from a loopback address (a tunnel's too) to the server's own
            # Unix socket after logging in, leaving TLS behind: the connection stays as the route says.
            "prefer_socket": "false",
        }
        if endpoint.socket:
            host = "localhost"
            params["socket"] = endpoint.socket
        else:
            address = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address  # IPv6
            host = f"{address}:{endpoint.port}"
            level = route.level
            if level == TlsMode.PREFER:  # ConnectorX's "preferred" insists: do what the catalog got
                level = TlsMode.REQUIRE if self.tls_in_use() else TlsMode.DISABLE
            params["ssl-mode"] = _CONNECTORX_MODES[level]
            if route.level >= TlsMode.VERIFY_CA and c.tls.ca:
                params["ssl-ca"] = route.files().ca
        return f"mysql://{credentials}@{host}/{quote(c.database, safe='')}?{urlencode(params)}"

    def bulk_unavailable(self, columns: list[Column]) -> str | None:
        c, route = self.connection, self.route
        if c.tls.client_certificate:
            return "ConnectorX cannot present a client certificate"
        if c.cloudsql is not None and c.cloudsql.iam:
            return "ConnectorX cannot log in with an IAM token"
        endpoint = route.bulk_endpoint()
        if endpoint is None:
            return "the Cloud SQL instance's socket is not mounted here (infra/: cloudsql_instances)"
        if endpoint.tunnelled and route.level == TlsMode.VERIFY_FULL:
            return "through the bastion ConnectorX would check the certificate against 127.0.0.1"
        return None

    def bulk_expression(self, column: Column) -> str:
        """Integers, doubles, strings and bytes natively; BIT as a number; the rest (decimals,
        dates with their zero dates, times, floats, sets) as the server's text, for Arrow to parse."""
        name = self.quote(column.name)
        base = column.source_type.split("(")[0].split()[0].lower()
        if base == "bit":
            return f"CAST({name} AS UNSIGNED)"
        if base in _NATIVE and not (base == "bigint" and "unsigned" in column.source_type):
            return name
        return f"CAST({name} AS CHAR)"

    def present(self, column: Column) -> str:
        """Zero dates load as NULL (there is no such day): they are no value either."""
        if column.bigquery_type in ("DATE", "DATETIME", "TIMESTAMP"):
            return f"{super().present(column)} AND {self.quote(column.name)} > '0000-00-00'"
        return super().present(column)

    def bound_literal(self, value: Bound, kind: str) -> str:
        if isinstance(value, datetime) and value.tzinfo is not None:  # sessions run in UTC
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return super().bound_literal(value, kind)

    def converter(self, column: Column) -> Callable[[Any], Any] | None:
        kind, source_type = column.bigquery_type, column.source_type
        if kind in ("DATE", "DATETIME"):
            return _no_zero_date
        if kind == "TIMESTAMP":
            return _utc
        if kind == "BOOL":
            return _bool
        if source_type.startswith("bit"):
            return _bits
        return None

    def select_expression(self, column: Column) -> str:
        """A SET as MySQL's own text ('x,z', members in definition order), as the bulk reader has it."""
        if column.source_type.lower().startswith("set("):
            return f"CAST({self.quote(column.name)} AS CHAR)"
        return super().select_expression(column)


def _tls_cause(error: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind a pymysql error (it wraps the handshake's exception)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _no_zero_date(value: Any) -> Any:
    return None if value.__class__ is str else value  # '0000-00-00' arrives as text: no such day


def _utc(value: Any) -> Any:
    return None if value.__class__ is str else value.replace(tzinfo=timezone.utc)  # sessions run in UTC


def _bool(value: Any) -> bool:
    return bool(int.from_bytes(value, "big")) if isinstance(value, bytes) else bool(value)


def _bits(value: bytes) -> int:
    return int.from_bytes(value, "big")
