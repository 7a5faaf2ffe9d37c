"""Staging: a window's rows from the source into a staging table in BigQuery.

Batches stream from the source's bulk reader as Arrow into Parquet files on disk, settings.chunk_rows
rows per file, each file one load job into the staging table. Files load in the background while
the next are written, settings.loads_in_flight at a time: a BigQuery load job takes seconds whatever
its size, so one at a time would set the pace. A bulk reader that runs ahead of a slow load
(source.reads_ahead) reads the window in slices of about chunk_rows rows, which bounds how far, so
memory stays flat in the table's size.
"""

import contextvars
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..columnar import ParquetSpool
from ..model import Column, TableMetadata
from ..sources.base import Bound, Source
from ..stack import Stack
from .heartbeat import Pulse

# A running run's row count is saved this often (seconds): what the jobs page shows meanwhile. By
# time, not rows: each write is a round trip to the job store that the reading waits for.
PROGRESS_SECONDS = 2.0


@dataclass
class Progress:
    """What staging has done so far; the caller decides whether and where it is saved."""

    rows: int = 0
    bytes: int = 0
    dropped_array_nulls: int = 0


@dataclass(frozen=True)
class Reads:
    """What to read: the table's selected columns, over consecutive slices of the window on `column`
    (None: every row)."""

    meta: TableMetadata
    columns: list[Column]
    column: Column | None
    slices: list[tuple[Bound, Bound]]


def stage(
    stack: Stack,
    source: Source,
    reads: Reads,
    dataset: str,
    staging: str,
    pulse: Pulse,
    report: Callable[[Progress], None] | None = None,
) -> Progress:
    """Read `reads` into the existing staging table. Between batches `pulse` says whether the run
    may go on (its process is not stopping, its lease is still its own); `report` is called with
    the progress every PROGRESS_SECONDS."""
    settings, warehouse = stack.settings, stack.warehouse
    schema = warehouse.arrow_schema(reads.columns)
    progress = Progress()
    spool: ParquetSpool | None = None
    loading: deque[Future[None]] = deque()  # the load jobs in flight, oldest first
    reported = time.monotonic()

    def load(spool: ParquetSpool) -> None:
        try:
            warehouse.load_parquet(dataset, staging, spool.file)
        finally:
            spool.discard()

    def flush(spool: ParquetSpool) -> None:
        progress.bytes += spool.finish()
        while loading and (loading[0].done() or len(loading) >= settings.loads_in_flight):
            loading.popleft().result()  # a failed load stops the run here
        # in a copy of this context: the load job is recorded as the run's (warehouse.recording_jobs)
        loading.append(loader.submit(contextvars.copy_context().run, load, spool))

    with ThreadPoolExecutor(max_workers=settings.loads_in_flight, thread_name_prefix="etl-load") as loader:
        try:
            batches = (
                item
                for lower, upper in reads.slices
                for item in source.read_arrow(
                    reads.meta, reads.columns, reads.column, lower, upper, settings.batch_rows, schema
                )
            )
            for batch, dropped in batches:
                pulse.check()
                spool = spool or ParquetSpool(schema)
                spool.write(batch)
                progress.rows += batch.num_rows
                progress.dropped_array_nulls += dropped
                if spool.rows >= settings.chunk_rows:
                    flush(spool)
                    spool = None
                if report is not None and time.monotonic() - reported >= PROGRESS_SECONDS:
                    report(progress)
                    reported = time.monotonic()
            if spool is not None:
                flush(spool)
                spool = None
            while loading:
                loading.popleft().result()
            pulse.check()
        finally:
            if spool is not None:
                spool.discard()
    return progress
