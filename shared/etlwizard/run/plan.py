"""Planning a run: the window to read, where it starts, and how it is cut.

- A transactional window is lower <= cursor < upper: lower is the watermark, else this source's
  MAX(cursor) already in the table (resume), else the backfill start; upper is the source's clock
  minus the run lag, frozen before reading. A catalog window is every row.
- A window splits on its cursor, or for catalog loads on an integer primary key; the column's
  MIN/MAX/COUNT over the window is read once and cuts both the fan-out chunks and the read slices.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

from google.cloud import bigquery

from ..bigquery_sql import quote
from ..errors import NotFound
from ..job import Job
from ..model import Column, TableMetadata
from ..sources.base import Bound, Source
from ..stack import Stack
from ..warehouse import SOURCE_ID
from .state import BoundText, Window


def parse_bound(value: BoundText, kind: str) -> Bound:
    """A stored bound back in the column's terms: aware for TIMESTAMP, naive for DATETIME."""
    if value is None or isinstance(value, int):
        return value
    if kind == "DATE":
        return date.fromisoformat(value[:10])
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if kind == "TIMESTAMP" and parsed.tzinfo is None else parsed


def bound_text(value: Bound) -> BoundText:
    if value is None or isinstance(value, int):
        return value
    return value.isoformat(timespec="microseconds") if isinstance(value, datetime) else value.isoformat()


def _start_bound(start: str | None, kind: str) -> Bound:
    """historical_start_date (a day) as a bound of the cursor's type."""
    if start is None:
        return None
    day = date.fromisoformat(start)
    if kind == "DATE":
        return day
    midnight = datetime(day.year, day.month, day.day)
    return midnight.replace(tzinfo=timezone.utc) if kind == "TIMESTAMP" else midnight


@dataclass(frozen=True)
class Stats:
    smallest: date | datetime | int
    largest: date | datetime | int
    count: int


@dataclass(frozen=True)
class Plan:
    """What one run reads: rows with lower <= cursor < upper (cursor None: every row), cut on
    `split` where it may be (stats: the split column over the window, when it was worth reading)."""

    cursor: Column | None
    lower: Bound
    upper: Bound
    split: Column | None
    stats: Stats | None

    @property
    def empty(self) -> bool:
        """A transactional window with nothing new yet (the source's clock has not passed lower)."""
        return self.lower is not None and self.upper is not None and self.lower >= self.upper  # type: ignore[operator]

    @property
    def window(self) -> Window | None:
        if self.cursor is None:
            return None
        return Window(str(bound_text(self.lower)) if self.lower is not None else None, str(bound_text(self.upper)))

    def slices(self, size: int) -> list[tuple[Bound, Bound]]:
        return cut(self.stats, self.split, self.lower, self.upper, size)


def read_table(job: Job, source: Source) -> tuple[TableMetadata, list[Column]]:
    """The source table and the job's columns as the source has them now."""
    meta = source.fetch_table_metadata(job.schema_name, job.table_name)
    missing = [n for n in job.selected_columns if meta.column(n) is None]
    if missing:
        raise NotFound(f"column(s) {', '.join(missing)} are no longer in {job.schema_name}.{job.table_name}")
    return meta, [c for n in job.selected_columns if (c := meta.column(n)) is not None]


def plan_window(stack: Stack, job: Job, source: Source, meta: TableMetadata, cursor: Column | None) -> Plan:
    """The run's plan (see Plan.empty for a window with nothing new)."""
    lower = upper = None
    if cursor is not None:
        kind = cursor.bigquery_type
        lower = parse_bound(job.watermark, kind)
        if lower is None:
            lower = _resume_point(stack, job, cursor) or _start_bound(job.historical_start_date, kind)
        upper = source.cursor_now(cursor)
        if kind != "DATE":
            upper -= timedelta(seconds=stack.settings.run_lag_seconds)
        uncut = Plan(cursor, lower, upper, None, None)
        if uncut.empty:
            return uncut  # nothing to read, nothing to cut
    split = split_column(job, meta, cursor)
    settings = stack.settings
    smallest_cut = min(settings.fanout_rows, settings.chunk_rows) if source.reads_ahead else settings.fanout_rows
    stats = None
    if split is not None and (meta.estimated_rows is None or meta.estimated_rows > smallest_cut):
        stats = window_stats(source, meta, split, lower, upper)
    return Plan(cursor, lower, upper, split, stats)


def split_column(job: Job, meta: TableMetadata, cursor: Column | None) -> Column | None:
    """The cursor for transactional loads, an integer primary key for catalog loads; else None."""
    if cursor is not None:
        return cursor
    key = meta.column(job.primary_key[0]) if len(job.primary_key) == 1 else None
    return key if key is not None and key.bigquery_type == "INT64" else None


def window_stats(source: Source, meta: TableMetadata, column: Column, lower: Bound, upper: Bound) -> Stats | None:
    found = source.window_stats(meta, column, lower, upper)
    return None if found is None or found[0] is None else Stats(*found)


def cut(stats: Stats | None, column: Column | None, lower: Bound, upper: Bound, size: int) -> list[tuple[Bound, Bound]]:
    """lower <= column < upper as consecutive half-open slices of about `size` rows each, cut where
    the values are (an open bound becomes the column's MIN, or MAX + 1); one slice when the window
    holds no more than `size` rows or its values cannot be told apart."""
    whole: list[tuple[Bound, Bound]] = [(lower, upper)]
    if stats is None or column is None or stats.count <= size:
        return whole
    # dates, datetimes or integers, all of one kind: Any, as the arithmetic is the same for each
    start: Any = lower if lower is not None else stats.smallest
    end: Any = upper if upper is not None else stats.largest + 1  # type: ignore[operator]  # open: integers only
    pieces = -(-stats.count // size)
    step: Any = (stats.largest - start) / pieces  # slice where the rows are
    if not step:
        return whole  # every row has the same value: nothing to split on
    if column.bigquery_type == "DATE":
        step = timedelta(days=max(1, step.days))
    elif column.bigquery_type == "INT64":
        step = max(1, int(step))
    bounds = [start]
    while len(bounds) < pieces and bounds[-1] + step < end:
        bounds.append(bounds[-1] + step)
    bounds.append(end)
    return list(pairwise(bounds))


def _resume_point(stack: Stack, job: Job, cursor: Column) -> Bound:
    """A job on a table that already holds this source's rows starts at their MAX(cursor)."""
    warehouse, destination = stack.warehouse, job.destination
    rows = warehouse.query(
        f"SELECT MAX({quote(cursor.name)}) FROM {warehouse.quoted(destination.dataset, destination.table)} "
        f"WHERE {SOURCE_ID} = @source_id",
        [bigquery.ScalarQueryParameter("source_id", "STRING", job.source_id)],
    )
    value = rows[0][0] if rows else None
    if isinstance(value, datetime) and cursor.bigquery_type == "TIMESTAMP" and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value
