"""Rows deleted at the source (README, "Deleted rows"): a transactional job sees inserts and updates
through its cursor, never a delete. A sweep compares the job's primary keys, source against this
source's live rows in BigQuery, by fingerprinted buckets of the key's hash; only buckets that differ
are drilled into, their keys read from both sides, and the keys BigQuery holds but the source no
longer has are marked (_etl_deleted_at) or removed in one MERGE. No replication privilege is needed.

Keys the source has and BigQuery not yet (rows the next run loads) are left to the runs.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any

from .. import fingerprint
from ..connections import open_connection
from ..errors import EtlError, InvalidInput
from ..job import LoadType
from ..jobs import get_job
from ..sources.sql import SqlSource
from ..stack import Stack
from .plan import read_table

log = logging.getLogger(__name__)
MODES = ("keep", "mark", "remove")
ROWS_PER_BUCKET = 256  # what a drill into one differing bucket reads, about, per side
MAX_HEX_DIGITS = 5  # a million buckets


@dataclass(frozen=True)
class Sweep:
    status: str  # done | skipped | failed
    checked_at: str
    mode: str
    deleted: int = 0  # keys found gone and marked or removed
    buckets: int = 0
    differing: int = 0
    keys_read: int = 0  # keys read from both sides while drilling into differing buckets
    message: str = ""

    def to_doc(self) -> dict[str, Any]:
        return dict(self.__dict__)


def hex_digits(rows: int) -> int:
    """Enough buckets for about ROWS_PER_BUCKET keys each."""
    return min(MAX_HEX_DIGITS, max(1, math.ceil(math.log(max(rows, 1) / ROWS_PER_BUCKET, 16))))


def sweep(stack: Stack, job_id: str, mode: str | None = None) -> Sweep:
    """Find this job's rows deleted at the source and mark or remove them in BigQuery, as the job
    says (or `mode`, on demand)."""
    job = get_job(stack, job_id)
    mode = mode or job.checks.deleted_rows
    if mode not in MODES:
        raise InvalidInput("deleted_rows", f"must be {', '.join(MODES)}")
    now = stack.clock().isoformat()
    if mode == "keep":
        return Sweep("skipped", now, mode, message="deleted rows are kept")
    if job.load_type is not LoadType.TRANSACTIONAL:
        return Sweep("skipped", now, mode, message="a catalog load replaces the table: deleted rows go with it")
    if not job.primary_key:
        return Sweep("skipped", now, mode, message=NO_KEY)
    dataset, table = job.destination.dataset, job.destination.table
    try:
        with open_connection(stack, job.connection_id) as source:
            if not isinstance(source, SqlSource):
                return Sweep("skipped", now, mode, message="BigQuery sources are not swept yet")
            meta, columns = read_table(job, source)
            by_name = {c.name: c for c in columns}
            key = tuple(by_name[name] for name in job.primary_key)
            spec = fingerprint.Spec(key, None, hex_digits(meta.estimated_rows or source.count_rows(meta)))
            at_source = source.fingerprints(meta, spec, None, None, None)
            live = mode == "mark"
            if live:
                stack.warehouse.add_deleted_at(dataset, table)
            in_bigquery = stack.warehouse.fingerprints(dataset, table, spec, job.source_id, live_only=live)
            differing = [m.bucket for m in fingerprint.compare(at_source, in_bigquery) if m.destination is not None]
            gone: set[str] = set()
            read = 0
            for some in _batches(differing):  # one scan a side for up to a thousand buckets
                at_source_keys = source.bucket_keys(meta, spec, some)
                in_bigquery_keys = stack.warehouse.bucket_keys(dataset, table, spec, job.source_id, some, live)
                gone |= in_bigquery_keys - at_source_keys
                read += len(at_source_keys) + len(in_bigquery_keys)
        if gone:
            stack.warehouse.delete_keys(dataset, table, spec, job.source_id, gone, mark=mode == "mark")
    except EtlError as e:
        log.warning("job %s: deleted-row sweep failed: %s", job_id, e.message)
        return Sweep("failed", now, mode, message=e.message)
    buckets = len(at_source.keys() | in_bigquery.keys())
    log.info("job %s: %d rows deleted at the source %s", job_id, len(gone), "marked" if mode == "mark" else "removed")
    return Sweep("done", now, mode, len(gone), buckets, len(differing), read)


def _batches(buckets: list[str], size: int = 1000) -> list[list[str]]:
    return [buckets[i : i + size] for i in range(0, len(buckets), size)]


NO_KEY = (
    "the table has no primary key, so a row deleted at the source cannot be told from one never loaded: "
    "load it as a catalog job (a full snapshot each run) to drop deleted rows"
)
