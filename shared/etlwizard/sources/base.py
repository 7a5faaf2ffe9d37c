"""The protocol every source meets (sql.py holds what the SQL sources share).

A source is opened for one connection and used as a context manager:

    with open_source(connection, credentials, settings) as source:
        meta = source.fetch_table_metadata("public", "orders")

Identifiers are never pasted into SQL from a request: fetch_table_metadata looks the table up in
the catalog with bound parameters (NotFound when it is not there), and every later query quotes
the names the catalog returned.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Self

import pyarrow as pa

from ..columnar import rows_to_batch
from ..config import Settings
from ..model import Column, Connection, TableMetadata
from ..reach.options import Credentials
from ..typemap import CURSOR_TYPES, BigQueryType

Row = Sequence[Any]  # one row's values, in the order of the columns read
Bound = int | date | datetime | None  # a window's bound: a cursor value, a key, or None (open)
# An Arrow record batch, and how many NULL array elements it dropped (BigQuery arrays hold none)
ArrowBatch = tuple[pa.RecordBatch, int]


class Source(ABC):
    type: str  # the Connection.type this class serves
    reads_ahead = False  # whether read_arrow buffers ahead of a slow consumer without limit

    def __init__(self, connection: Connection, credentials: Credentials, settings: Settings):
        self.connection = connection
        self.credentials = credentials
        self.settings = settings

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Stop a read in progress, from another thread (the process is shutting down). Where the
        driver cannot, nothing: the run stops at the reader's next batch."""

    def close(self) -> None:
        pass

    def scrub(self, text: str) -> str:
        """A driver's message with every secret blotted out (a key line by line), should a driver
        ever echo one."""
        for secret in self.credentials.secrets():
            text = text.replace(secret, "***")
            for line in secret.splitlines():
                if len(line) >= 16:
                    text = text.replace(line, "***")
        return text

    @abstractmethod
    def test(self) -> str:
        """Connect and run a trivial query; returns the server's version string."""

    @abstractmethod
    def list_tables(self) -> list[dict[str, str]]:
        """[{schema_name, table_name, kind}] for every table and view the user can read."""

    @abstractmethod
    def fetch_table_metadata(self, schema_name: str, table_name: str) -> TableMetadata:
        """Columns (with types mapped), primary key and unique keys; NotFound if absent."""

    @abstractmethod
    def total_rows(self, meta: TableMetadata) -> tuple[int, bool]:
        """(row count, exact?): exact for small tables, the catalog's estimate for large ones."""

    @abstractmethod
    def sample_rows(self, meta: TableMetadata, limit: int) -> list[dict[str, Any]]:
        """The first `limit` rows (in primary-key order where there is one), JSON-safe."""

    @abstractmethod
    def cursor_now(self, cursor: Column) -> date | datetime:
        """The source's own clock, in the cursor column's terms (aware for TIMESTAMP, naive local
        for DATETIME, a date for DATE): runs freeze their window's upper bound with it."""

    @abstractmethod
    def read_batches(
        self,
        meta: TableMetadata,
        columns: list[Column],
        cursor: Column | None,
        lower: Bound,
        upper: Bound,
        batch_size: int,
    ) -> Iterator[Sequence[Row]]:
        """The row path, which every source has: yield lists of row tuples (values as BigQuery's
        types mean them), streaming: rows with lower <= cursor < upper (either bound None = open),
        or every row when cursor is None. read_arrow takes it where no bulk reader can."""

    def window_stats(
        self, meta: TableMetadata, column: Column, lower: Bound, upper: Bound
    ) -> tuple[Any, Any, int] | None:
        """(MIN, MAX, COUNT) of a column over lower <= column < upper, for splitting a large load;
        None where the source does not split."""
        return None

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
        """The same rows as Arrow record batches in `schema` (the destination's: warehouse.arrow_schema),
        with a count of dropped NULL array elements. SQL sources override this with a bulk reader
        that skips Python rows."""
        for rows in self.read_batches(meta, columns, cursor, lower, upper, batch_size):
            yield rows_to_batch(rows, columns, schema)


def make_column(
    name: str,
    source_type: str,
    mapped: BigQueryType,
    nullable: bool,
    is_primary_key: bool = False,
    indexed: bool = False,
) -> Column:
    return Column(
        name=name,
        source_type=source_type,
        bigquery_type=mapped.type,
        nullable=nullable,
        mode="REPEATED" if mapped.repeated else ("NULLABLE" if nullable else "REQUIRED"),
        is_primary_key=is_primary_key,
        is_timestamp_candidate=mapped.type in CURSOR_TYPES and not mapped.repeated,
        warning=mapped.warning,
        indexed=indexed,
    )
