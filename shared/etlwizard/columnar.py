"""Rows from a source -> Arrow record batches -> Parquet files that BigQuery load jobs read.

Parquet keeps what NDJSON would turn into text: bytes as bytes, decimals as decimals with their
scale, timestamps as microseconds in UTC. Columns are written in the staging table's order
(the emulator matches Parquet columns by position; BigQuery by name).
"""

import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .model import Column
from .values import to_json

_ARROW = {
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "NUMERIC": pa.decimal128(38, 9),
    "BIGNUMERIC": pa.decimal256(76, 38),
    "BOOL": pa.bool_(),
    "STRING": pa.string(),
    "JSON": pa.string(),
    "BYTES": pa.binary(),
    "DATE": pa.date32(),
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "TIME": pa.time64("us"),
}


def loaded_type(column: Column, emulated: bool) -> str:
    """The BigQuery type a column is loaded as: the emulator has no BIGNUMERIC (STRING instead)."""
    return "STRING" if emulated and column.bigquery_type == "BIGNUMERIC" else column.bigquery_type


def arrow_field(column: Column, emulated: bool) -> pa.Field:
    kind = _ARROW[loaded_type(column, emulated)]
    if column.mode == "REPEATED":
        return pa.field(column.name, pa.list_(kind))
    return pa.field(column.name, kind)


def _prepare(kind: str):
    """How a Python value becomes what pyarrow takes for a BigQuery type (None: as it is)."""
    if kind == "STRING":
        return lambda v: v if isinstance(v, str) else to_json(v) if not isinstance(v, (dict, list)) else json.dumps(v)
    if kind == "JSON":
        return lambda v: v if isinstance(v, str) else json.dumps(to_json(v), ensure_ascii=False)
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return lambda v: v if isinstance(v, Decimal) else Decimal(v)
    return None


def arrow_schema(columns: list[Column], emulated: bool) -> pa.Schema:
    return pa.schema([arrow_field(c, emulated) for c in columns])


def rows_to_batch(rows: list[tuple], columns: list[Column], emulated: bool) -> tuple[pa.RecordBatch, int]:
    """Python row tuples -> a record batch; also returns how many NULL array elements were
    dropped (a BigQuery ARRAY is never NULL and holds no NULLs)."""
    schema = arrow_schema(columns, emulated)
    arrays, dropped = [], 0
    for index, (column, field) in enumerate(zip(columns, schema)):
        values = [row[index] for row in rows]
        prepare = _prepare(loaded_type(column, emulated))
        if column.mode == "REPEATED":
            dropped += sum(x is None for v in values if v for x in v)
            values = [[prepare(x) if prepare else x for x in v if x is not None] if v is not None else []
                      for v in values]
        elif prepare is not None:
            values = [None if v is None else prepare(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.record_batch(arrays, schema=schema), dropped


def text_to_array(values: list, field: pa.Field) -> pa.Array:
    """Dates, datetimes, timestamps and decimals as the database wrote them in text, parsed by
    Arrow; MySQL's zero dates ('0000-00-00 ...') become NULL, since no such day exists."""
    text = pa.array(values, type=pa.string())
    kind = field.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        text = pc.if_else(pc.starts_with(text, "0000-00-00"), pa.scalar(None, pa.string()), text)
    if pa.types.is_timestamp(kind) and kind.tz:  # wall-clock text of a UTC session, then UTC
        return text.cast(pa.timestamp(kind.unit)).cast(kind)
    return text.cast(kind)


class ParquetSpool:
    """Appends record batches to a Parquet file, one row group per batch."""

    def __init__(self, file, schema: pa.Schema):
        self.writer = pq.ParquetWriter(file, schema, compression="snappy")
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        self.writer.close()
