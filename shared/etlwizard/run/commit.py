"""The commit: one atomic statement from staging into the destination table, leaving the same table
whether it runs once or twice.

- Transactional with a key: a MERGE upserting on the key (and this source), so rows read again at
  the window's boundary replace themselves. Over the whole table, or only over the partitions from
  the window's on where that provably matches the same rows (`within_window`: no row of a staged
  key lies before the window, so none moved there from an older cursor).
- Transactional without a key: a MERGE replacing this source's rows inside the window.
- Catalog: a MERGE inserting the snapshot and deleting this source's other rows in one statement, so
  a reader sees the old snapshot or the new one. Where the table holds this source's rows only (and
  is large enough for it to pay), the snapshot replaces the table instead (`replace_table`): one
  INSERT ... SELECT of staging into a table made like the destination, then a copy job over the
  destination (WRITE_TRUNCATE). The same rows, as atomic; BigQuery bills the staged bytes and a scan
  of _etl_source_id, where the MERGE bills the whole destination table besides the staged bytes (a
  copy job bills nothing).
Other sources' rows in a shared table are never touched.

Whether a table holds other sources' rows is asked under a claim on the table in the job store
(collection `table_writes`): a replace holds it alone, from that question to its copy's end, and
every MERGE of a commit registers beside it (waiting while a replace holds it). So no other job's
commit can put rows in between the answer and the copy. Writers other than the run engine's commits
are outside the claim: a transactional repair (run/verify.py) rewrites only its own source's rows,
which were there when the question was asked, and rows written by hand while a replace runs are
lost, as with any table replaced.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.cloud import bigquery

from ..bigquery_sql import quote
from ..job import Job
from ..model import Column
from ..sources.base import Bound
from ..stack import Stack
from ..warehouse import DELETED_AT, LOADED_AT, RUN_ID, SOURCE_ID, STAGING_MARK

CLAIMS = "table_writes"  # job store: per destination table, the commits writing it now
# A MERGE's registration counts this long: BigQuery ends any query by 6 hours, so an older one is
# a worker that died, not a MERGE still running.
MERGE_HOLD = timedelta(hours=6)
WAIT_SECONDS = 0.25  # how often a MERGE waiting for a replace to finish looks again
# A smaller table is merged: BigQuery bills every query at least 10 MB, so below about this size the
# replace's question and INSERT cost more than the MERGE's scan of the table they spare. (The
# emulator reports every table as 0 bytes: the demo and the run tests merge.)
REPLACE_MIN_BYTES = 32 * 2**20

log = logging.getLogger(__name__)


def staging_name(job: Job, run_id: str, chunk: int | None = None) -> str:
    suffix = "" if chunk is None else f"_{chunk}"
    return f"{job.destination.table}{STAGING_MARK}{run_id}{suffix}"


@dataclass(frozen=True)
class Merge:
    sql: str
    params: list[bigquery.ScalarQueryParameter]


def merge_statement(
    job: Job,
    columns: list[Column],
    lower: Bound,
    upper: Bound,
    target: str,
    staged: str,
    run_id: str,
    replace_window: bool = False,
    revive: bool = False,
    within_window: bool = False,
) -> Merge:
    """The MERGE of `staged` (a table or a subquery, as SQL) into `target` for a window of the job's
    cursor (lower None: open; both ignored for catalog loads). replace_window: a keyed window's
    rows that staging lacks are deleted too (a repair: the window as the source has it now).
    revive: the table marks deleted rows (_etl_deleted_at): a row the source has again lives again.
    within_window: a keyed upsert matches only the table's rows with cursor >= lower, so BigQuery
    reads only the partitions from the window's on; correct only where no row of this source with a
    staged key lies before the window (`moved_rows` is 0)."""
    names = [quote(c.name) for c in columns]
    insert = (
        f"INSERT ({', '.join(names)}, {SOURCE_ID}, {RUN_ID}, {LOADED_AT}) "
        f"VALUES ({', '.join('S.' + n for n in names)}, @source_id, @run_id, CURRENT_TIMESTAMP())"
    )
    params = _row_params(job, run_id)
    cursor, key = job.cursor, [quote(k) for k in job.primary_key]
    if cursor is not None and key:
        on = " AND ".join(f"T.{k} = S.{k}" for k in key) + f" AND T.{SOURCE_ID} = @source_id"
        if within_window and lower is not None and not replace_window:
            on += f" AND T.{quote(cursor.name)} >= @lower"
            params.append(bigquery.ScalarQueryParameter("lower", cursor.bigquery_type, lower))
        update = [f"{n} = S.{n}" for n in names if n not in key]
        update += [f"{RUN_ID} = @run_id", f"{LOADED_AT} = CURRENT_TIMESTAMP()"]
        update += [f"{DELETED_AT} = NULL"] if revive else []
        extra = ""
        if replace_window:  # where deleted rows are marked, the rows the source lacks are marked too
            gone = f"UPDATE SET {DELETED_AT} = CURRENT_TIMESTAMP()" if revive else "DELETE"
            live = f" AND T.{DELETED_AT} IS NULL" if revive else ""
            extra = f" WHEN NOT MATCHED BY SOURCE AND {_window_scope(cursor, lower, upper, params)}{live} THEN {gone}"
        return Merge(
            f"MERGE {target} T USING {staged} S ON {on} "
            f"WHEN MATCHED THEN UPDATE SET {', '.join(update)} WHEN NOT MATCHED THEN {insert}{extra}",
            params,
        )
    scope = f"T.{SOURCE_ID} = @source_id"
    if cursor is not None:  # no key: replace this source's rows inside the window
        scope = _window_scope(cursor, lower, upper, params)
    # ON FALSE, as an equality that never holds (S._etl_no_match is NULL): engines hash-join an
    # equality, where DuckDB (the emulator) compares every pair under ON FALSE, which made
    # replacing 80,000 rows take 8 s and 2M rows hours
    return Merge(
        f"MERGE {target} T USING (SELECT *, CAST(NULL AS STRING) AS _etl_no_match FROM {staged}) S "
        f"ON T.{RUN_ID} = S._etl_no_match "
        f"WHEN NOT MATCHED THEN {insert} WHEN NOT MATCHED BY SOURCE AND {scope} THEN DELETE",
        params,
    )


def moved_rows(job: Job, cursor: Column, target: str, staged: str, lower: Bound) -> Merge:
    """How many of this source's rows in `target` have a key staged and a cursor before the window
    (or none): rows whose cursor moved on at the source (updated_at semantics), which a MERGE
    within the window would not match, inserting their keys again. A SELECT bills the columns it
    reads only: the key, cursor and source columns of the partitions before the window."""
    column = quote(cursor.name)
    on = " AND ".join(f"T.{k} = S.{k}" for k in (quote(k) for k in job.primary_key))
    return Merge(
        f"SELECT COUNT(*) FROM {target} T JOIN {staged} S ON {on} "
        f"WHERE T.{SOURCE_ID} = @source_id AND (T.{column} < @lower OR T.{column} IS NULL)",
        [
            bigquery.ScalarQueryParameter("source_id", "STRING", job.source_id),
            bigquery.ScalarQueryParameter("lower", cursor.bigquery_type, lower),
        ],
    )


def insert_statement(job: Job, columns: list[Column], target: str, staged: str, run_id: str) -> Merge:
    """`staged` (a table or a subquery, as SQL) appended to `target` with this run's metadata: the
    rows the catalog MERGE would insert, exactly."""
    names = ", ".join(quote(c.name) for c in columns)
    return Merge(
        f"INSERT INTO {target} ({names}, {SOURCE_ID}, {RUN_ID}, {LOADED_AT}) "
        f"SELECT {names}, @source_id, @run_id, CURRENT_TIMESTAMP() FROM {staged}",
        _row_params(job, run_id),
    )


def _row_params(job: Job, run_id: str) -> list[bigquery.ScalarQueryParameter]:
    return [
        bigquery.ScalarQueryParameter("source_id", "STRING", job.source_id),
        bigquery.ScalarQueryParameter("run_id", "STRING", run_id),
    ]


def _window_scope(cursor: Column, lower: Bound, upper: Bound, params: list[bigquery.ScalarQueryParameter]) -> str:
    """This source's rows with lower <= cursor < upper (lower None: open), its bounds added to params."""
    scope = f"T.{SOURCE_ID} = @source_id"
    if lower is not None:
        scope += f" AND T.{quote(cursor.name)} >= @lower"
        params.append(bigquery.ScalarQueryParameter("lower", cursor.bigquery_type, lower))
    scope += f" AND T.{quote(cursor.name)} < @upper"
    params.append(bigquery.ScalarQueryParameter("upper", cursor.bigquery_type, upper))
    return scope


def commit(
    stack: Stack,
    job: Job,
    columns: list[Column],
    lower: Bound,
    upper: Bound,
    staging_tables: list[str],
    run_id: str,
) -> None:
    """Commit the staging tables (one, or one per chunk) into the job's table."""
    warehouse, dataset = stack.warehouse, job.destination.dataset
    staged = [warehouse.quoted(dataset, name) for name in staging_tables]
    source = staged[0] if len(staged) == 1 else "(" + " UNION ALL ".join(f"SELECT * FROM {s}" for s in staged) + ")"
    if job.marks_deleted:  # the MERGE revives rows the source has again: the column must be there
        warehouse.add_deleted_at(dataset, job.destination.table)
    if job.cursor is None and replace_table(stack, job, columns, source, run_id):
        return
    target = warehouse.quoted(dataset, job.destination.table)
    within = within_window(stack, job, lower, target, source)
    merge = merge_statement(
        job, columns, lower, upper, target, source, run_id, revive=job.marks_deleted, within_window=within
    )
    with merging(stack, job, run_id):
        warehouse.query(merge.sql, merge.params)


def within_window(stack: Stack, job: Job, lower: Bound, target: str, staged: str) -> bool:
    """Whether a keyed upsert may match only the table's rows from the window's lower bound on
    (merge_statement's within_window), reading only those partitions where the table is partitioned
    on the cursor (as a table ETL Wizard made is). Provably the same upsert when no row of this
    source with a staged key has a cursor before the window or none (moved_rows: 0): true of an
    append-only source, or one whose cursor never changes, whatever the job says of it; where a row's
    cursor moved on (updated_at), the whole table is merged, so its key is never inserted twice.
    Asked under the job's lease: no other run writes this source's rows before the MERGE.
    Only for tables of at least REPLACE_MIN_BYTES: the question bills 10 MB at least."""
    warehouse, cursor = stack.warehouse, job.cursor
    if cursor is None or not job.primary_key or lower is None:
        return False
    found = warehouse.get_table(job.destination.dataset, job.destination.table)
    partitioned = found.time_partitioning.field if found.time_partitioning else None
    if (found.num_bytes or 0) < REPLACE_MIN_BYTES or (partitioned or "").lower() != cursor.name.lower():
        return False
    question = moved_rows(job, cursor, target, staged, lower)
    return int(warehouse.query(question.sql, question.params)[0][0]) == 0


def replace_table(stack: Stack, job: Job, columns: list[Column], staged: str, run_id: str) -> bool:
    """A catalog snapshot (`staged`, as SQL) replaces the job's table by a copy job where the table
    holds this source's rows only: provably what the catalog MERGE would leave (the same inserted
    rows, no other rows to keep). False, having changed nothing, where the MERGE does it: the table
    holds other sources' rows or rows ETL Wizard did not load, another commit is writing it now, or
    it is smaller than REPLACE_MIN_BYTES.

    Under the table's claim: one question (a scan of _etl_source_id), then a table made like the
    destination (schema, partitioning, clustering: a copy needs matching partitioning, and gives the
    destination the copied table's schema) filled by one INSERT ... SELECT of staging with the run's
    metadata columns, then the copy. The destination's schema is read again just before the copy:
    a column added meanwhile (a job edited) sends the commit to the MERGE rather than drop it."""
    warehouse, dataset, table = stack.warehouse, job.destination.dataset, job.destination.table
    if (warehouse.get_table(dataset, table).num_bytes or 0) < REPLACE_MIN_BYTES:
        return False
    with replacing(stack, job, run_id) as claimed:
        if not claimed or warehouse.others_rows(dataset, table, job.source_id):
            return False
        like = warehouse.get_table(dataset, table)
        replacement = f"{staging_name(job, run_id)}_replace"
        warehouse.create_like(dataset, replacement, like)
        try:
            insert = insert_statement(job, columns, warehouse.quoted(dataset, replacement), staged, run_id)
            warehouse.query(insert.sql, insert.params)
            if warehouse.get_table(dataset, table).schema != like.schema:
                return False
            warehouse.replace_with(dataset, table, replacement)
        finally:
            warehouse.drop_table(dataset, replacement)
    return True


def _claim_id(job: Job) -> str:
    return f"{job.destination.dataset}.{job.destination.table}"


def _live(doc: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The claim document without the registrations that ran out."""
    doc = doc or {}
    merges = {run: until for run, until in (doc.get("merging") or {}).items() if until > now.isoformat()}
    held = doc.get("replacing")
    return {"merging": merges, "replacing": held if held and held["until"] > now.isoformat() else None}


@contextmanager
def merging(stack: Stack, job: Job, run_id: str) -> Iterator[None]:
    """Registered as writing the job's table for the block, once no replace holds it (waiting for
    one to end: a replace's claim lasts its copy job, and runs out if its worker dies)."""
    claim = _claim_id(job)

    def register(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        now = stack.clock()
        live = _live(doc, now)
        if live["replacing"] is not None:
            return None
        live["merging"][run_id] = (now + MERGE_HOLD).isoformat()
        return live

    while stack.store.transact(CLAIMS, claim, register) is None:
        time.sleep(WAIT_SECONDS)
    try:
        yield
    finally:
        stack.store.transact(CLAIMS, claim, lambda doc: _without(stack, doc, run_id))


def _without(stack: Stack, doc: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    live = _live(doc, stack.clock())
    live["merging"].pop(run_id, None)
    if live["replacing"] is not None and live["replacing"]["run"] == run_id:
        live["replacing"] = None
    return live


@contextmanager
def replacing(stack: Stack, job: Job, run_id: str) -> Iterator[bool]:
    """The job's table claimed for a replace alone for the block (True), renewed by a thread every
    quarter of ETL_LEASE_SECONDS while it lasts; False when another commit is writing the table now
    (nothing claimed)."""
    claim, lease = _claim_id(job), timedelta(seconds=stack.settings.lease_seconds)

    def hold(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        now = stack.clock()
        live = _live(doc, now)
        others = live["replacing"] is not None and live["replacing"]["run"] != run_id
        if others or set(live["merging"]) - {run_id}:
            return None
        live["replacing"] = {"run": run_id, "until": (now + lease).isoformat()}
        return live

    if stack.store.transact(CLAIMS, claim, hold) is None:
        yield False
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease.total_seconds() / 4):
            try:
                stack.store.transact(CLAIMS, claim, hold)
            except Exception:  # the store is away for a moment: the claim lasts a lease
                log.warning("renewing the replace claim on %s failed", claim, exc_info=True)

    renewer = threading.Thread(target=renew, name="etl-claim", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join()
        stack.store.transact(CLAIMS, claim, lambda doc: _without(stack, doc, run_id))
