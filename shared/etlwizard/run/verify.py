"""Verification: does the destination hold exactly this job's source rows? (README, "Verification")

Both sides fingerprint the job's rows per bucket inside their own engine (fingerprint.py): the
source its table within the committed windows, BigQuery this source's rows in the destination. Only
one row per bucket crosses the network. A bucket that differs is a mismatch; repair loads those
buckets again (a transactional job's days replaced within their window, a catalog job's table as a
whole) and verifies again.

Rows changed at the source since the run that loaded them (a cursor moved past the watermark) show
as mismatches until the next run; verifying right after a run keeps that window to seconds.
"""

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .. import fingerprint
from ..connections import open_connection
from ..errors import EtlError
from ..job import Job, LoadType
from ..jobs import get_job
from ..model import Column, TableMetadata
from ..sources.base import Bound
from ..sources.sql import SqlSource
from ..stack import Stack
from . import lease
from .commit import merge_statement, merging, staging_name
from .heartbeat import heartbeat
from .plan import _start_bound, parse_bound, read_table
from .stage import Reads, stage

log = logging.getLogger(__name__)
SMALL_TABLE = 100_000  # rows; a catalog table of up to this many has 16 buckets, up to 100 times more 256


@dataclass(frozen=True)
class Verification:
    status: str  # matched | mismatched | skipped | failed
    checked_at: str
    scope: str  # what was compared, in words
    buckets: int = 0
    rows: int = 0  # the source's rows compared
    mismatched: list[fingerprint.Mismatch] = field(default_factory=list)
    message: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked_at": self.checked_at,
            "scope": self.scope,
            "buckets": self.buckets,
            "rows": self.rows,
            "mismatched": [m.to_doc() for m in self.mismatched],
            "message": self.message,
        }


@dataclass(frozen=True)
class Scope:
    """The rows of a job a verification compares: the cursor's window (transactional) or all."""

    cursor: Column | None
    lower: Bound
    upper: Bound

    @property
    def window(self) -> fingerprint.Window | None:
        if self.cursor is None:
            return None
        return fingerprint.Window(self.cursor, self.lower, self.upper)  # type: ignore[arg-type]

    def describe(self) -> str:
        if self.cursor is None:
            return "the whole table"
        start = "the first row" if self.lower is None else str(self.lower)
        return f"{self.cursor.name} from {start} to {self.upper}"


def verify(stack: Stack, job_id: str, lower: str | None = None, upper: str | None = None) -> Verification:
    """Compare the job's committed rows, or those of one window (lower/upper: a run's window, as
    stored), source against destination. A failure to reach either side is a 'failed' result."""
    job = get_job(stack, job_id)
    now = stack.clock().isoformat()
    if job.load_type is LoadType.TRANSACTIONAL and job.watermark is None:
        return Verification("skipped", now, "nothing committed yet")
    try:
        with open_connection(stack, job.connection_id) as source:
            meta, columns = read_table(job, source)
            scope = _scope(job, columns, lower, upper)
            spec = spec_for(job, meta, columns)
            if spec is None:
                return _by_count(stack, job, source, meta, scope, now)
            if not isinstance(source, SqlSource):
                return Verification("skipped", now, scope.describe(), message="BigQuery sources are not verified yet")
            at_source = source.fingerprints(meta, spec, scope.cursor, scope.lower, scope.upper)
        destination = job.destination
        in_bigquery = stack.warehouse.fingerprints(
            destination.dataset, destination.table, spec, job.source_id, scope.window, live_only=job.marks_deleted
        )
    except EtlError as e:
        log.warning("job %s: verification failed: %s", job_id, e.message)
        return Verification("failed", now, "", message=e.message)
    mismatched = fingerprint.compare(at_source, in_bigquery)
    rows = sum(b.rows for b in at_source.values())
    status = "mismatched" if mismatched else "matched"
    log.info("job %s: verification %s, %d buckets, %d rows", job_id, status, len(at_source | in_bigquery), rows)
    return Verification(status, now, scope.describe(), len(at_source | in_bigquery), rows, mismatched)


def spec_for(job: Job, meta: TableMetadata, columns: list[Column]) -> fingerprint.Spec | None:
    """Key and cursor, bucketed by the cursor's day (transactional) or the key's hash (catalog);
    None where there is nothing to fingerprint by (a catalog table without a key: counted only)."""
    by_name = {c.name: c for c in columns}
    key = tuple(by_name[name] for name in job.primary_key if name in by_name)
    cursor = by_name.get(job.timestamp_column or "") if job.load_type is LoadType.TRANSACTIONAL else None
    if any(c.bigquery_type not in fingerprint.FINGERPRINTED for c in key):
        key = ()
    if cursor is not None:
        return fingerprint.Spec(key, cursor)
    if not key:
        return None
    rows = meta.estimated_rows or 0
    return fingerprint.Spec(key, None, hex_digits=1 if rows <= SMALL_TABLE else 2 if rows <= 100 * SMALL_TABLE else 3)


def _scope(job: Job, columns: list[Column], lower: str | None, upper: str | None) -> Scope:
    if job.load_type is not LoadType.TRANSACTIONAL:
        return Scope(None, None, None)
    cursor = next(c for c in columns if c.name == job.timestamp_column)
    kind = cursor.bigquery_type
    start = parse_bound(lower, kind) if lower is not None else _start_bound(job.historical_start_date, kind)
    return Scope(cursor, start, parse_bound(upper or job.watermark, kind))


def _by_count(stack: Stack, job: Job, source: Any, meta: TableMetadata, scope: Scope, now: str) -> Verification:
    """A catalog table without a key: its rows counted on both sides."""
    at_source = source.count_rows(meta)
    in_bigquery = stack.warehouse.count_rows(job.destination.dataset, job.destination.table, job.source_id)
    mismatched = []
    if at_source != in_bigquery:
        counts = (fingerprint.Bucket(at_source, 0, 0), fingerprint.Bucket(in_bigquery, 0, 0))
        mismatched = [fingerprint.Mismatch("all", *counts)]
    status = "mismatched" if mismatched else "matched"
    return Verification(status, now, "row count (no primary key)", 1, at_source, mismatched)


def day_windows(scope: Scope, mismatched: list[fingerprint.Mismatch]) -> list[tuple[Bound, Bound]]:
    """Each mismatched day as a window of the cursor, within the scope."""
    assert scope.cursor is not None
    kind = scope.cursor.bigquery_type
    windows: list[tuple[Bound, Bound]] = []
    for mismatch in mismatched:
        day = date.fromisoformat(mismatch.bucket)
        start: date | datetime = day
        end: date | datetime = day + timedelta(days=1)
        if kind != "DATE":
            start, end = datetime(day.year, day.month, day.day), datetime(end.year, end.month, end.day)
            if kind == "TIMESTAMP":
                start, end = start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc)
        lower = start if scope.lower is None else max(start, scope.lower)
        upper = end if scope.upper is None else min(end, scope.upper)
        windows.append((lower, upper))
    return windows


def repair(
    stack: Stack, job_id: str, found: Verification, lower: str | None = None, upper: str | None = None
) -> Verification:
    """Load the mismatched buckets again and verify once more: a transactional job's days are read
    from the source and replace this source's rows of those days (within the window verified);
    a catalog job runs whole (its buckets are hash ranges no reader can select cheaply)."""
    if found.status != "mismatched":
        return found
    job = get_job(stack, job_id)
    if job.load_type is not LoadType.TRANSACTIONAL:
        from .engine import run_job  # the engine verifies after a run

        run_job(stack, job_id, "repair")  # aftercare.REPAIR_TRIGGER: it repairs nothing more
        return verify(stack, job_id)
    repair_id = "repair" + uuid.uuid4().hex[:8]
    if lease.acquire(stack, job_id, repair_id) is None:
        return replace(found, message="not repaired: a run of the job is in progress; verify again after it")
    try:
        with open_connection(stack, job.connection_id) as source:
            meta, columns = read_table(job, source)
            scope = _scope(job, columns, lower, upper)
            for window in day_windows(scope, found.mismatched):
                _reload(stack, job, source, meta, columns, scope, window, repair_id)
    finally:
        lease.release(stack, job_id, repair_id, committed=False)
    log.info("job %s: repaired %d buckets", job_id, len(found.mismatched))
    return verify(stack, job_id, lower, upper)


def _reload(
    stack: Stack,
    job: Job,
    source: Any,
    meta: TableMetadata,
    columns: list[Column],
    scope: Scope,
    window: tuple[Bound, Bound],
    repair_id: str,
) -> None:
    dataset, warehouse = job.destination.dataset, stack.warehouse
    staging = staging_name(job, repair_id)
    warehouse.create_staging(dataset, staging, columns)
    try:
        with heartbeat(stack, job.id, repair_id, source.cancel) as pulse:
            stage(stack, source, Reads(meta, columns, scope.cursor, [window]), dataset, staging, pulse)
        target = warehouse.quoted(dataset, job.destination.table)
        staged = warehouse.quoted(dataset, staging)
        merge = merge_statement(
            job, columns, *window, target, staged, repair_id, replace_window=True, revive=job.marks_deleted
        )
        with merging(stack, job, repair_id):  # as every commit: never while a catalog replace copies
            warehouse.query(merge.sql, merge.params)
    finally:
        warehouse.drop_table(dataset, staging)
