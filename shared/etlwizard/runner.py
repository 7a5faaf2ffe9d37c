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
import tempfile
import time
import uuid
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


def handle_message(stack: Stack, data: bytes) -> dict | None:
    """A run message ({"job_id", "trigger"}) as Pub/Sub or the local dispatcher delivers it."""
    try:
        message = json.loads(data)
        job_id = message["job_id"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("message", "a run message is JSON with a job_id") from None
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
    run_id = uuid.uuid4().hex[:12]
    run = {"id": run_id, "job_id": job_id, "trigger": trigger, "status": "running", "window": None,
           "rows": 0, "bytes": 0, "started_at": _now().isoformat(), "finished_at": None,
           "duration_seconds": None, "error": None}
    if not _acquire_lease(stack, job_id, run_id):
        run.update(status="skipped", error="Another run of this job is in progress.",
                   finished_at=run["started_at"], duration_seconds=0)
        stack.store.put(runs_collection(job_id), run_id, run)
        log.info("job %s: run skipped, another run holds the lease", job_id)
        return run
    stack.store.put(runs_collection(job_id), run_id, run)
    started = time.monotonic()
    try:
        upper = _load(stack, job, run)
        _finish(stack, job_id, run_id, upper)
        run["status"] = "succeeded"
    except Exception as e:
        _finish(stack, job_id, run_id, None)
        run.update(status="failed", error=e.message if isinstance(e, EtlError) else "Internal error: see the log.")
        log.log(logging.WARNING if isinstance(e, EtlError) else logging.ERROR,
                "job %s run %s failed: %s", job_id, run_id, run["error"], exc_info=not isinstance(e, EtlError))
        raise
    finally:
        run.update(finished_at=_now().isoformat(), duration_seconds=round(time.monotonic() - started, 3))
        stack.store.put(runs_collection(job_id), run_id, run)
    log.info("job %s run %s: %s rows, %s bytes", job_id, run_id, run["rows"], run["bytes"])
    return run


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


def _finish(stack: Stack, job_id: str, run_id: str, upper) -> None:
    """Release the lease and, after a committed transactional run, move the watermark to upper."""

    def release(job):
        if job is None or (job.get("lease") or {}).get("run_id") != run_id:
            return None
        updated = {k: v for k, v in job.items() if k != "lease"}
        if upper is not None:
            updated["watermark"] = _iso(upper)
        return updated

    stack.store.transact(COLLECTION, job_id, release)


def _load(stack: Stack, job: dict, run: dict):
    """Extract, stage, commit. Returns the window's upper bound (None for catalog loads)."""
    warehouse = stack.warehouse
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    staging = f"{table}__etl_staging_{run['id']}"
    with open_connection(stack, job["connection_id"]) as source:
        meta = source.fetch_table_metadata(job["schema_name"], job["table_name"])
        missing = [n for n in job["selected_columns"] if meta.column(n) is None]
        if missing:
            raise NotFound(f"column(s) {', '.join(missing)} are no longer in {job['schema_name']}.{job['table_name']}")
        columns = [meta.column(n) for n in job["selected_columns"]]
        cursor = meta.column(job["timestamp_column"]) if job["load_type"] == "transactional" else None
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
                return lower  # nothing new yet: the watermark stays where it is
        warehouse.create_staging(dataset, staging, columns)
        try:
            _stage(stack, source, meta, columns, cursor, lower, upper, dataset, staging, run)
            _commit(stack, job, columns, cursor, lower, upper, dataset, table, staging, run["id"])
        finally:
            warehouse.drop_table(dataset, staging)
    return upper


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


def _stage(stack, source, meta, columns, cursor, lower, upper, dataset, staging, run) -> None:
    """Stream record batches into Parquet files on disk; each chunk of rows is one load job."""
    settings, warehouse = stack.settings, stack.warehouse
    schema = arrow_schema(columns, warehouse.emulated)
    spool = chunk = None
    try:
        for batch, dropped in source.read_arrow(meta, columns, cursor, lower, upper, settings.batch_rows,
                                                warehouse.emulated):
            if chunk is None:
                spool = tempfile.TemporaryFile()
                chunk = ParquetSpool(spool, schema)
            chunk.write(batch)
            run["rows"] += batch.num_rows
            if dropped:
                run["dropped_array_nulls"] = run.get("dropped_array_nulls", 0) + dropped
            if chunk.rows >= settings.chunk_rows:
                _load_chunk(warehouse, dataset, staging, spool, chunk, run)
                stack.store.put(runs_collection(run["job_id"]), run["id"], run)  # progress
                spool = chunk = None
        if chunk is not None:
            _load_chunk(warehouse, dataset, staging, spool, chunk, run)
    finally:
        if spool is not None:
            spool.close()


def _load_chunk(warehouse, dataset, staging, spool, chunk, run) -> None:
    chunk.close()
    run["bytes"] += spool.tell()
    warehouse.load_parquet(dataset, staging, spool)
    spool.close()


def _q(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def _commit(stack, job, columns, cursor, lower, upper, dataset, table, staging, run_id) -> None:
    """One MERGE statement: atomic in BigQuery, and the same table whether it runs once or twice."""
    names = [c.name for c in columns]
    insert = (f"INSERT ({', '.join(_q(n) for n in names)}, {SOURCE_ID}, {RUN_ID}, {LOADED_AT}) "
              f"VALUES ({', '.join('S.' + _q(n) for n in names)}, @source_id, @run_id, CURRENT_TIMESTAMP())")
    params = [bigquery.ScalarQueryParameter("source_id", "STRING", job["source_id"]),
              bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
    target, source_table = stack.warehouse.quoted(dataset, table), stack.warehouse.quoted(dataset, staging)
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
        sql = (f"MERGE {target} T USING {source_table} S ON FALSE "
               f"WHEN NOT MATCHED THEN {insert} WHEN NOT MATCHED BY SOURCE AND {scope} THEN DELETE")
    stack.warehouse.query(sql, params)
