"""One run of one job: plan the window, stream rows as Parquet to a staging table, commit them with one MERGE,
then move the watermark (DESIGN section 6).

- Transactional: rows with lower <= cursor < upper, upper frozen from the source's clock minus a lag
  before reading. With a primary key the MERGE upserts on it; without one it replaces this source's
  rows in the window. Either way, re-running a window leaves the table as one run would.
- Catalog: the MERGE inserts the snapshot and deletes this source's other rows in one statement:
  a reader sees the old snapshot or the new one.
- The watermark moves only after the MERGE committed; a lease in the job store lets one run per job
  at a time, and a trigger that finds it held is recorded as skipped.
"""

import json
import logging
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

from google.cloud import bigquery

from .columnar import ParquetSpool, arrow_schema
from .connections import open_connection
from .errors import EtlError, InvalidInput, NotFound
from .jobs import COLLECTION, get_job, runs_collection
from .scheduling import Schedule
from .stack import Stack
from .warehouse import LOADED_AT, RUN_ID, SOURCE_ID

log = logging.getLogger(__name__)
# A running run's row count is written this often (seconds): what the jobs page shows meanwhile. By
# time, not rows: each write is a round trip to Firestore that the reading waits for.
PROGRESS_SECONDS = 2.0


def handle_message(stack: Stack, data: bytes) -> dict | None:
    """A run message ({"job_id", "trigger"}) as Pub/Sub or the local dispatcher delivers it."""
    try:
        message = json.loads(data)
        job_id = message["job_id"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("message", "a run message is JSON with a job_id") from None
    if "chunk" in message:
        return run_chunk(stack, job_id, message["run_id"], message["chunk"])
    return run_job(stack, job_id, trigger=message.get("trigger", "manual"))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse_bound(value: str | None, kind: str):
    if value is None:
        return None
    if kind == "DATE":
        return date.fromisoformat(value[:10])
    parsed = datetime.fromisoformat(value)
    if kind == "TIMESTAMP" and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _start_bound(start: str | None, kind: str):
    """historical_start_date (a day) as a bound of the cursor's type."""
    if start is None:
        return None
    day = date.fromisoformat(start)
    if kind == "DATE":
        return day
    midnight = datetime(day.year, day.month, day.day)
    return midnight.replace(tzinfo=timezone.utc) if kind == "TIMESTAMP" else midnight


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="microseconds") if isinstance(value, datetime) else value.isoformat()


def run_job(stack: Stack, job_id: str, trigger: str = "manual") -> dict | None:
    job = get_job(stack, job_id)
    if trigger == "schedule" and (job["state"] != "active" or not Schedule(**job["schedule"]).is_due(_now())):
        return None
    pending = job.get("pending_run")  # a split run that failed resumes where it stopped
    run = (stack.store.get(runs_collection(job_id), pending) if pending else None) or _new_run(job_id, trigger)
    run_id = run["id"]
    if not _acquire_lease(stack, job_id, run_id):
        skipped = _new_run(job_id, trigger) | {"status": "skipped", "duration_seconds": 0,
                                               "error": "Another run of this job is in progress."}
        skipped["finished_at"] = skipped["started_at"]
        stack.store.put(runs_collection(job_id), skipped["id"], skipped)
        log.info("job %s: run skipped, another run holds the lease", job_id)
        return skipped
    if run.get("chunks"):
        return _fan_out(stack, job, run)
    stack.store.put(runs_collection(job_id), run_id, run)
    started = time.monotonic()
    try:
        done, upper = _load(stack, job, run)
        if not done:
            return run  # split into chunks: the last chunk to finish commits
        _finish(stack, job_id, run_id, upper)
        run["status"] = "succeeded"
    except Exception as e:
        _finish(stack, job_id, run_id, None, committed=False)
        run.update(status="failed", error=_message(e))
        log.log(logging.WARNING if isinstance(e, EtlError) else logging.ERROR,
                "job %s run %s failed: %s", job_id, run_id, run["error"], exc_info=not isinstance(e, EtlError))
        raise
    finally:
        if run["status"] != "running":
            run.update(finished_at=_now().isoformat(), duration_seconds=round(time.monotonic() - started, 3))
            stack.store.put(runs_collection(job_id), run_id, run)
    log.info("job %s run %s: %s rows, %s bytes", job_id, run_id, run["rows"], run["bytes"])
    return run


def _new_run(job_id: str, trigger: str) -> dict:
    return {"id": uuid.uuid4().hex[:12], "job_id": job_id, "trigger": trigger, "status": "running", "window": None,
            "rows": 0, "bytes": 0, "started_at": _now().isoformat(), "finished_at": None,
            "duration_seconds": None, "error": None}


def _message(error: Exception) -> str:
    return error.message if isinstance(error, EtlError) else "Internal error: see the log."


def _acquire_lease(stack: Stack, job_id: str, run_id: str) -> bool:
    now = _now()

    def take(job):
        if job is None:
            return None
        lease = job.get("lease")
        if lease and datetime.fromisoformat(lease["expires_at"]) > now:
            return None
        expires = now + timedelta(seconds=stack.settings.lease_seconds)
        return {**job, "lease": {"run_id": run_id, "expires_at": expires.isoformat()}}

    return stack.store.transact(COLLECTION, job_id, take) is not None


def _renew_lease(stack: Stack, job_id: str, run_id: str) -> None:
    """A run still working pushes its lease's expiry on, so no second run starts beside it. Loads
    finishing together renew it in turn: the expiry is taken inside the transaction, so it only grows."""

    def renew(job):
        if job is None or (job.get("lease") or {}).get("run_id") != run_id:
            return None
        expires = (_now() + timedelta(seconds=stack.settings.lease_seconds)).isoformat()
        return {**job, "lease": {"run_id": run_id, "expires_at": expires}}

    stack.store.transact(COLLECTION, job_id, renew)


def _finish(stack: Stack, job_id: str, run_id: str, upper, committed: bool = True) -> None:
    """Release the lease and, after a committed run, move the watermark to upper (transactional)."""

    def release(job):
        if job is None or (job.get("lease") or {}).get("run_id") != run_id:
            return None
        updated = {k: v for k, v in job.items() if k != "lease"}
        if committed:
            updated.pop("pending_run", None)
            if upper is not None:
                updated["watermark"] = _iso(upper)
        return updated

    stack.store.transact(COLLECTION, job_id, release)


def _prepare(stack: Stack, job: dict, source):
    """The source table's metadata, the job's columns and cursor, as the source has them now."""
    meta = source.fetch_table_metadata(job["schema_name"], job["table_name"])
    missing = [n for n in job["selected_columns"] if meta.column(n) is None]
    if missing:
        raise NotFound(f"column(s) {', '.join(missing)} are no longer in {job['schema_name']}.{job['table_name']}")
    columns = [meta.column(n) for n in job["selected_columns"]]
    cursor = meta.column(job["timestamp_column"]) if job["load_type"] == "transactional" else None
    return meta, columns, cursor


def _load(stack: Stack, job: dict, run: dict):
    """Plan the window; extract, stage and commit it here, or split it into chunk messages.
    Returns (committed here?, the window's upper bound or None for catalog loads)."""
    warehouse = stack.warehouse
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    staging = _staging_name(job, run["id"])
    with open_connection(stack, job["connection_id"]) as source:
        meta, columns, cursor = _prepare(stack, job, source)
        lower = upper = None
        if cursor is not None:
            kind = cursor.bigquery_type
            lower = _parse_bound(job.get("watermark"), kind)
            if lower is None:
                lower = _resume_point(stack, job, kind) or _start_bound(job.get("historical_start_date"), kind)
            upper = source.cursor_now(cursor)
            if kind != "DATE":
                upper -= timedelta(seconds=stack.settings.run_lag_seconds)
            run["window"] = {"lower": _iso(lower), "upper": _iso(upper)}
            if lower is not None and lower >= upper:
                return True, lower  # nothing new yet: the watermark stays where it is
        plan = _plan_chunks(stack, job, source, meta, cursor, lower, upper)
        if plan is not None:
            run.update(plan)
            stack.store.transact(COLLECTION, job["id"], lambda j: j and {**j, "pending_run": run["id"]})
            _fan_out(stack, job, run)
            return False, None
        warehouse.create_staging(dataset, staging, columns)
        try:
            _stage(stack, source, meta, columns, cursor, lower, upper, dataset, staging, run,
                   split=_split_column(job, meta, cursor))
            _commit(stack, job, columns, cursor, lower, upper, dataset, table, warehouse.quoted(dataset, staging),
                    run["id"])
        finally:
            warehouse.drop_table(dataset, staging)
    return True, upper


def _staging_name(job: dict, run_id: str, chunk: int | None = None) -> str:
    suffix = "" if chunk is None else f"_{chunk}"
    return f"{job['destination']['table']}__etl_staging_{run_id}{suffix}"


# --- Large windows: chunks that fan out and commit together --------------------------------------

def _plan_chunks(stack: Stack, job: dict, source, meta, cursor, lower, upper) -> dict | None:
    """Split a window holding more than Settings.fanout_rows rows into chunks of about that many."""
    column = _split_column(job, meta, cursor)
    if column is None:
        return None
    slices = _slices(source, meta, column, lower, upper, stack.settings.fanout_rows)
    if len(slices) < 2:
        return None
    return {"split_column": column.name,
            "chunks": [{"index": i, "lower": _bound_text(lo), "upper": _bound_text(hi), "status": "pending",
                        "rows": 0, "bytes": 0, "attempts": 0, "error": None}
                       for i, (lo, hi) in enumerate(slices)]}


def _split_column(job: dict, meta, cursor):
    """What a window splits on: the cursor for transactional loads, an integer primary key for catalog
    loads; None when there is neither."""
    if cursor is not None:
        return cursor
    key = job["primary_key"]
    if len(key) == 1 and meta.column(key[0]).bigquery_type == "INT64":
        return meta.column(key[0])
    return None


def _slices(source, meta, column, lower, upper, size: int) -> list[tuple]:
    """lower <= column < upper as consecutive half-open slices of about `size` rows each, cut where
    the values are (an open bound becomes the column's MIN, or MAX + 1); one slice when the window
    holds no more than `size` rows or its values cannot be told apart."""
    whole = [(lower, upper)]
    if meta.estimated_rows is not None and meta.estimated_rows <= size:
        return whole
    stats = source.window_stats(meta, column, lower, upper)
    if stats is None or stats[2] <= size:
        return whole
    smallest, largest, count = stats
    start = lower if lower is not None else smallest
    end = upper if upper is not None else largest + 1  # an open upper bound only comes with integer keys
    pieces = -(-count // size)
    step = (largest - start) / pieces  # slice where the rows are
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
    return list(zip(bounds, bounds[1:]))


def _bound_text(value):
    return value if isinstance(value, int) else _iso(value)


def _fan_out(stack: Stack, job: dict, run: dict) -> dict:
    """Publish a message for every chunk not loaded yet: the first run, or a resumed one."""
    run.update(status="running", error=None, finished_at=None)
    stack.store.put(runs_collection(job["id"]), run["id"], run)
    stale = (_now() - timedelta(seconds=stack.settings.lease_seconds)).isoformat()
    # a chunk still loading elsewhere is left to its worker, unless that worker is long gone
    todo = [c for c in run["chunks"] if c["status"] in ("pending", "failed")
            or (c["status"] == "loading" and c.get("loading_since", "") < stale)]
    for chunk in todo:
        stack.publisher.publish(json.dumps({"job_id": job["id"], "run_id": run["id"],
                                            "chunk": chunk["index"]}).encode())
    log.info("job %s run %s: %d chunks to load", job["id"], run["id"], len(todo))
    return run


def run_chunk(stack: Stack, job_id: str, run_id: str, index: int) -> dict | None:
    """Load one chunk into its own staging table; the chunk that finds all others done commits."""
    job = get_job(stack, job_id)
    runs = runs_collection(job_id)
    run = stack.store.get(runs, run_id)
    if run is None or run["chunks"][index]["status"] == "done":
        return run  # a redelivered message: already loaded
    since = _now().isoformat()
    stack.store.transact(runs, run_id, lambda r: _set_chunk(r, index, status="loading", loading_since=since,
                                                               attempts=r["chunks"][index]["attempts"] + 1))
    chunk = run["chunks"][index]
    dataset = job["destination"]["dataset"]
    staging = _staging_name(job, run_id, index)
    progress = {"rows": 0, "bytes": 0, "job_id": job_id, "id": run_id}
    try:
        with open_connection(stack, job["connection_id"]) as source:
            meta, columns, _ = _prepare(stack, job, source)
            split = meta.column(run["split_column"])
            kind = split.bigquery_type
            lower, upper = (chunk["lower"], chunk["upper"]) if kind == "INT64" else (
                _parse_bound(chunk["lower"], kind), _parse_bound(chunk["upper"], kind))
            stack.warehouse.create_staging(dataset, staging, columns)
            _stage(stack, source, meta, columns, split, lower, upper, dataset, staging, progress, checkpoint=False,
                   split=split)
    except Exception as e:
        error = _message(e)
        stack.store.transact(runs, run_id, lambda r: _failed(r, index, error))
        _finish(stack, job_id, run_id, None, committed=False)  # the next trigger resumes at this chunk
        raise
    finished = stack.store.transact(runs, run_id, lambda r: _chunk_done(r, index, progress))
    if finished["status"] == "committing":
        _commit_chunks(stack, job, finished)
    return finished


def _set_chunk(run: dict, index: int, **changes) -> dict:
    chunks = list(run["chunks"])
    chunks[index] = {**chunks[index], **changes}
    return {**run, "chunks": chunks}


def _failed(run: dict, index: int, error: str) -> dict:
    run = _set_chunk(run, index, status="failed", error=error)
    return {**run, "status": "failed", "finished_at": _now().isoformat(),
            "error": f"Chunk {index + 1} of {len(run['chunks'])} failed: {error} The next run resumes at it."}


def _chunk_done(run: dict, index: int, progress: dict) -> dict:
    run = _set_chunk(run, index, status="done", rows=progress["rows"], bytes=progress["bytes"], error=None)
    run.update(rows=sum(c["rows"] for c in run["chunks"]), bytes=sum(c["bytes"] for c in run["chunks"]))
    if all(c["status"] == "done" for c in run["chunks"]) and run["status"] == "running":
        run["status"] = "committing"  # exactly one chunk handler sees this transition
    if "dropped_array_nulls" in progress:
        run["dropped_array_nulls"] = run.get("dropped_array_nulls", 0) + progress["dropped_array_nulls"]
    return run


def _commit_chunks(stack: Stack, job: dict, run: dict) -> None:
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    warehouse = stack.warehouse
    stagings = [_staging_name(job, run["id"], c["index"]) for c in run["chunks"]]
    union = "(" + " UNION ALL ".join(f"SELECT * FROM {warehouse.quoted(dataset, s)}" for s in stagings) + ")"
    runs = runs_collection(job["id"])
    try:
        with open_connection(stack, job["connection_id"]) as source:
            meta, columns, cursor = _prepare(stack, job, source)
        lower = upper = None
        if cursor is not None:
            lower = _parse_bound(run["window"]["lower"], cursor.bigquery_type)
            upper = _parse_bound(run["window"]["upper"], cursor.bigquery_type)
        _commit(stack, job, columns, cursor, lower, upper, dataset, table, union, run["id"])
    except Exception as e:
        error = _message(e)
        stack.store.transact(runs, run["id"], lambda r: {**r, "status": "failed", "error": error,
                                                        "finished_at": _now().isoformat()})
        _finish(stack, job["id"], run["id"], None, committed=False)
        raise
    _finish(stack, job["id"], run["id"], upper)
    for staging in stagings:
        warehouse.drop_table(dataset, staging)
    started = datetime.fromisoformat(run["started_at"])
    stack.store.transact(runs, run["id"], lambda r: {**r, "status": "succeeded", "finished_at": _now().isoformat(),
                                                    "duration_seconds": round((_now() - started).total_seconds(), 3)})
    log.info("job %s run %s: %s rows in %d chunks", job["id"], run["id"], run["rows"], len(run["chunks"]))


def _resume_point(stack: Stack, job: dict, kind: str):
    """A job on a table that already holds this source's rows starts at their MAX(cursor)."""
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    cursor = "`" + job["timestamp_column"].replace("`", "") + "`"
    rows = stack.warehouse.query(
        f"SELECT MAX({cursor}) FROM {stack.warehouse.quoted(dataset, table)} WHERE {SOURCE_ID} = @source_id",
        [bigquery.ScalarQueryParameter("source_id", "STRING", job["source_id"])])
    value = rows[0][0] if rows else None
    if isinstance(value, datetime) and kind == "TIMESTAMP" and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _stage(stack, source, meta, columns, cursor, lower, upper, dataset, staging, run, checkpoint=True,
           split=None) -> None:
    """Stream the rows with lower <= cursor < upper (every row when cursor is None) into Parquet files
    on disk, settings.chunk_rows rows per file, each file one load job into the staging table. Files
    load in the background while the next are written, settings.loads_in_flight at a time: a BigQuery
    load job takes seconds whatever its size, so one at a time would set the pace. A bulk reader that
    runs ahead of a slow load (source.reads_ahead) reads the window in slices of about chunk_rows rows
    on the split column, which bounds how far, so memory stays flat in the table's size."""
    settings, warehouse = stack.settings, stack.warehouse
    schema = arrow_schema(columns, warehouse.emulated)
    spool = None
    loading = deque()  # the load jobs in flight, oldest first
    reported = time.monotonic()

    def load(spool):
        try:
            warehouse.load_parquet(dataset, staging, spool.file)
        finally:
            spool.discard()
        _renew_lease(stack, run["job_id"], run["id"])  # here, off the reading thread

    def flush(spool):
        run["bytes"] += spool.finish()
        while loading and (loading[0].done() or len(loading) >= settings.loads_in_flight):
            loading.popleft().result()  # a failed load stops the run here
        loading.append(loader.submit(load, spool))

    with ThreadPoolExecutor(max_workers=settings.loads_in_flight, thread_name_prefix="etl-load") as loader:
        try:
            windows = [(cursor, lower, upper)]
            if split is not None and source.reads_ahead:
                slices = _slices(source, meta, split, lower, upper, settings.chunk_rows)
                windows = [(split, lo, hi) for lo, hi in slices] if len(slices) > 1 else windows
            batches = (item for column, lo, hi in windows for item in source.read_arrow(
                meta, columns, column, lo, hi, settings.batch_rows, warehouse.emulated))
            for batch, dropped in batches:
                spool = spool or ParquetSpool(schema)
                spool.write(batch)
                run["rows"] += batch.num_rows
                if dropped:
                    run["dropped_array_nulls"] = run.get("dropped_array_nulls", 0) + dropped
                if spool.rows >= settings.chunk_rows:
                    flush(spool)
                    spool = None
                if checkpoint and time.monotonic() - reported >= PROGRESS_SECONDS:
                    stack.store.put(runs_collection(run["job_id"]), run["id"], run)
                    reported = time.monotonic()
            if spool is not None:
                flush(spool)
                spool = None
            while loading:
                loading.popleft().result()
        finally:
            if spool is not None:
                spool.discard()


def _q(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def _commit(stack, job, columns, cursor, lower, upper, dataset, table, source_sql, run_id) -> None:
    """One MERGE statement: atomic in BigQuery, and the same table whether it runs once or twice."""
    names = [c.name for c in columns]
    insert = (f"INSERT ({', '.join(_q(n) for n in names)}, {SOURCE_ID}, {RUN_ID}, {LOADED_AT}) "
              f"VALUES ({', '.join('S.' + _q(n) for n in names)}, @source_id, @run_id, CURRENT_TIMESTAMP())")
    params = [bigquery.ScalarQueryParameter("source_id", "STRING", job["source_id"]),
              bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
    target, source_table = stack.warehouse.quoted(dataset, table), source_sql
    key = job["primary_key"]
    if cursor is not None and key:
        on = " AND ".join(f"T.{_q(k)} = S.{_q(k)}" for k in key) + f" AND T.{SOURCE_ID} = @source_id"
        update = ", ".join(f"{_q(n)} = S.{_q(n)}" for n in names if n not in key)
        update += (", " if update else "") + f"{RUN_ID} = @run_id, {LOADED_AT} = CURRENT_TIMESTAMP()"
        sql = (f"MERGE {target} T USING {source_table} S ON {on} "
               f"WHEN MATCHED THEN UPDATE SET {update} WHEN NOT MATCHED THEN {insert}")
    else:
        scope = f"T.{SOURCE_ID} = @source_id"
        if cursor is not None:  # no key: replace this source's rows inside the window
            if lower is not None:
                scope += f" AND T.{_q(cursor.name)} >= @lower"
                params.append(bigquery.ScalarQueryParameter("lower", cursor.bigquery_type, lower))
            scope += f" AND T.{_q(cursor.name)} < @upper"
            params.append(bigquery.ScalarQueryParameter("upper", cursor.bigquery_type, upper))
        # ON FALSE, as an equality that never holds (S._etl_no_match is NULL): engines hash-join an
        # equality, where DuckDB (the emulator) compares every pair under ON FALSE, which made
        # replacing 80,000 rows take 8 s and 2M rows hours
        sql = (f"MERGE {target} T USING (SELECT *, CAST(NULL AS STRING) AS _etl_no_match FROM {source_table}) S "
               f"ON T.{RUN_ID} = S._etl_no_match "
               f"WHEN NOT MATCHED THEN {insert} WHEN NOT MATCHED BY SOURCE AND {scope} THEN DELETE")
    stack.warehouse.query(sql, params)
