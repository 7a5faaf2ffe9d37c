"""ETL jobs: create (with the destination table), read, edit, reconnect, pause, resume, delete, run now.

A job is one document in the job store (DESIGN section 5); its runs are the sub-collection
jobs/<id>/runs. Every change that touches the schedule goes through the stack's scheduler, and
"Run now" publishes the same message Cloud Scheduler would.
"""

import logging
import uuid
from datetime import datetime, timezone

from .compatibility import Compatibility, check_compatibility
from .connections import get_connection, open_connection
from .errors import InvalidInput, NotFound, SchemaIncompatible
from .model import (DESTINATION_MODES, LOAD_TYPES, Column, TableMetadata, backfill_start, default_table_name,
                    require_names, require_object, require_text, source_id)
from .scheduling import Schedule, run_message
from .stack import Stack
from .warehouse import METADATA_PREFIX, check_dataset, check_table

log = logging.getLogger(__name__)
COLLECTION = "jobs"


def runs_collection(job_id: str) -> str:
    return f"{COLLECTION}/{job_id}/runs"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def get_job(stack: Stack, job_id: str) -> dict:
    job = stack.store.get(COLLECTION, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


def present(job: dict, runs: list[dict] | None = None) -> dict:
    """A job as the API shows it: with its next three run times and, when given its runs, the last."""
    schedule = Schedule(**job["schedule"])
    upcoming = schedule.next_runs(3) if job["state"] == "active" else []
    shown = {k: v for k, v in job.items() if k != "lease"}
    shown.update(cron=schedule.cron_expression(), next_runs=[t.isoformat() for t in upcoming])
    if runs is not None:
        shown["last_run"] = max(runs, key=lambda r: r["started_at"]) if runs else None
    return shown


def list_jobs(stack: Stack) -> list[dict]:
    return [present(j, stack.store.list(runs_collection(j["id"])))
            for j in sorted(stack.store.list(COLLECTION), key=lambda j: j["created_at"])]


def read_job(stack: Stack, job_id: str) -> dict:
    return present(get_job(stack, job_id), stack.store.list(runs_collection(job_id)))


def list_runs(stack: Stack, job_id: str) -> list[dict]:
    get_job(stack, job_id)
    return sorted(stack.store.list(runs_collection(job_id)), key=lambda r: r["started_at"], reverse=True)


# --- Checking a job against its source and its destination --------------------------------------

def _selected(meta: TableMetadata, names: list[str], field: str) -> list[Column]:
    columns = []
    for name in names:
        column = meta.column(name)
        if column is None:
            raise InvalidInput(field, f"column {name!r} is not in {meta.schema_name}.{meta.table_name}")
        if name.lower().startswith(METADATA_PREFIX):
            raise InvalidInput(field, f"column {name!r}: names starting with {METADATA_PREFIX} are kept for "
                                      "the load's own columns in BigQuery")
        columns.append(column)
    return columns


def _check_keys(meta: TableMetadata, selected: list[str], load_type: str, cursor: str | None,
                primary_key: list[str]) -> None:
    if load_type == "transactional":
        if not cursor:
            raise InvalidInput("timestamp_column", "is required for a transactional load")
        column = meta.column(cursor)
        if column is None:
            raise InvalidInput("timestamp_column", f"column {cursor!r} is not in {meta.schema_name}.{meta.table_name}")
        if not column.is_timestamp_candidate:
            raise InvalidInput("timestamp_column", f"column {cursor!r} is {column.source_type}, not a timestamp or date")
        if cursor not in selected:
            raise InvalidInput("timestamp_column", f"column {cursor!r} must be one of the selected columns")
    for name in primary_key:
        if meta.column(name) is None:
            raise InvalidInput("primary_key", f"column {name!r} is not in {meta.schema_name}.{meta.table_name}")
        if name not in selected:
            raise InvalidInput("primary_key", f"column {name!r} must be one of the selected columns")


def check_destination(stack: Stack, dataset: str, table: str, columns: list[Column], primary_key: list[str],
                      cursor: str | None) -> tuple[dict, Compatibility]:
    described = stack.warehouse.describe_table(dataset, table)
    result = check_compatibility([c.to_dict() for c in columns], described["columns"], primary_key=primary_key,
                                 cursor=cursor, partition_field=described["partition_field"],
                                 cluster_fields=described["cluster_fields"])
    return described, result


def validate_schema(stack: Stack, body) -> dict:
    """POST /api/etl/validate-schema-compatibility/: {source_columns, destination_table: "dataset.table",
    primary_key?, timestamp_column?}."""
    body = require_object(body)
    columns = body.get("source_columns")
    if not isinstance(columns, list) or not columns or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("bigquery_type"), str)
            for c in columns):
        raise InvalidInput("source_columns", "must be a list of {name, bigquery_type, mode} objects")
    target = require_text(body, "destination_table", max_length=2048)
    dataset, _, table = target.partition(".")
    check_dataset(dataset, "destination_table")
    check_table(table, "destination_table")
    described = stack.warehouse.describe_table(dataset, table)
    result = check_compatibility(columns, described["columns"],
                                 primary_key=require_names(body, "primary_key", optional=True),
                                 cursor=body.get("timestamp_column") or None,
                                 partition_field=described["partition_field"],
                                 cluster_fields=described["cluster_fields"])
    return result.to_dict()


# --- Create ------------------------------------------------------------------------------------

def create_job(stack: Stack, body) -> dict:
    body = require_object(body)
    name = require_text(body, "name", max_length=200)
    connection = get_connection(stack, require_text(body, "connection_id", max_length=64))
    schema_name = require_text(body, "schema_name")
    table_name = require_text(body, "table_name")
    load_type = body.get("load_type")
    if load_type not in LOAD_TYPES:
        raise InvalidInput("load_type", "must be transactional or catalog")
    selected = require_names(body, "selected_columns")
    cursor = body.get("timestamp_column") or None
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidInput("timestamp_column", "must be a column name")
    start = None
    if load_type == "transactional":
        choice = body.get("historical_backfill") or ("custom" if body.get("historical_start_date") else "all")
        start = backfill_start(choice, body.get("historical_start_date"), datetime.now(timezone.utc).date())
    schedule = Schedule.from_payload(body.get("schedule"))
    destination = require_object(body.get("destination") or {"mode": "new"})
    mode = destination.get("mode", "new")
    if mode not in DESTINATION_MODES:
        raise InvalidInput("destination.mode", "must be new or existing")
    dataset = check_dataset(destination.get("dataset") or stack.settings.dataset, "destination.dataset")

    with open_connection(stack, connection.id) as source:
        meta = source.fetch_table_metadata(schema_name, table_name)
    columns = _selected(meta, selected, "selected_columns")
    primary_key = require_names(body, "primary_key", optional=True) if "primary_key" in body \
        else [k for k in (meta.primary_key or []) if k in selected]
    _check_keys(meta, selected, load_type, cursor if load_type == "transactional" else None, primary_key)
    table = check_table(destination.get("table") or default_table_name(table_name), "destination.table")

    job_id = uuid.uuid4().hex[:12]
    report = None
    if mode == "new":
        stack.warehouse.create_table(dataset, table, columns,
                                     partition_field=cursor if load_type == "transactional" else None,
                                     cluster_fields=primary_key)
    else:
        _, report = check_destination(stack, dataset, table, columns, primary_key,
                                      cursor if load_type == "transactional" else None)
        if not report.compatible:
            raise SchemaIncompatible("Schema incompatible", details=report.errors)
        if report.can_alter:
            if not destination.get("add_missing_columns"):
                missing = ", ".join(c["name"] for c in report.can_alter)
                raise SchemaIncompatible(
                    "Schema incompatible",
                    details=[f"The table lacks column(s) {missing}: set destination.add_missing_columns to "
                             "add them (NULLABLE), or leave them out of selected_columns."])
            stack.warehouse.add_columns(dataset, table, [c for c in columns
                                                         if c.name in {a["name"] for a in report.can_alter}])

    now = _now()
    job = {
        "id": job_id, "name": name, "connection_id": connection.id,
        "schema_name": meta.schema_name, "table_name": meta.table_name,
        "source_id": source_id(connection, meta.schema_name, meta.table_name),
        "selected_columns": selected, "columns": [c.to_dict() for c in columns],
        "load_type": load_type, "timestamp_column": cursor if load_type == "transactional" else None,
        "primary_key": primary_key, "historical_start_date": start,
        "destination": {"mode": mode, "dataset": dataset, "table": table},
        "schedule": schedule.to_dict(), "state": "active", "watermark": None,
        "created_at": now, "updated_at": now,
    }
    stack.store.put(COLLECTION, job_id, job)
    stack.scheduler.upsert(job_id, schedule)
    log.info("created job %s (%s -> %s.%s)", job_id, job["source_id"], dataset, table)
    out = present(job)
    if report is not None:
        out["compatibility"] = report.to_dict()
    return out


# --- Actions -------------------------------------------------------------------------------------

def _save(stack: Stack, job: dict) -> dict:
    job["updated_at"] = _now()
    stack.store.put(COLLECTION, job["id"], job)
    return present(job)


def update_job(stack: Stack, job_id: str, body) -> dict:
    """PATCH: name, schedule, selected_columns (new columns are added to the destination table)."""
    body = require_object(body)
    job = get_job(stack, job_id)
    if "name" in body:
        job["name"] = require_text(body, "name", max_length=200)
    if "schedule" in body:
        schedule = Schedule.from_payload(body["schedule"])
        job["schedule"] = schedule.to_dict()
        stack.scheduler.upsert(job_id, schedule, paused=job["state"] == "paused")
    if "selected_columns" in body:
        selected = require_names(body, "selected_columns")
        with open_connection(stack, job["connection_id"]) as source:
            meta = source.fetch_table_metadata(job["schema_name"], job["table_name"])
        columns = _selected(meta, selected, "selected_columns")
        _check_keys(meta, selected, job["load_type"], job["timestamp_column"], job["primary_key"])
        stack.warehouse.add_columns(job["destination"]["dataset"], job["destination"]["table"], columns)
        job["selected_columns"], job["columns"] = selected, [c.to_dict() for c in columns]
    return _save(stack, job)


def reconnect_job(stack: Stack, job_id: str, body) -> dict:
    """A new connection and/or source table for the same destination; the watermark is kept."""
    body = require_object(body)
    job = get_job(stack, job_id)
    connection = get_connection(stack, body.get("connection_id") or job["connection_id"])
    schema_name = body.get("schema_name") or job["schema_name"]
    table_name = body.get("table_name") or job["table_name"]
    with open_connection(stack, connection.id) as source:
        meta = source.fetch_table_metadata(schema_name, table_name)
    columns = _selected(meta, job["selected_columns"], "selected_columns")
    _check_keys(meta, job["selected_columns"], job["load_type"], job["timestamp_column"], job["primary_key"])
    _, report = check_destination(stack, job["destination"]["dataset"], job["destination"]["table"], columns,
                                  job["primary_key"], job["timestamp_column"])
    if not report.compatible or report.can_alter:
        raise SchemaIncompatible("Schema incompatible",
                                 details=report.errors + [f"Column {c['name']} is not in the table."
                                                          for c in report.can_alter])
    job.update(connection_id=connection.id, schema_name=meta.schema_name, table_name=meta.table_name,
               columns=[c.to_dict() for c in columns])
    return _save(stack, job) | {"compatibility": report.to_dict()}


def pause_job(stack: Stack, job_id: str) -> dict:
    return _set_state(stack, job_id, "paused", stack.scheduler.pause)


def resume_job(stack: Stack, job_id: str) -> dict:
    return _set_state(stack, job_id, "active", stack.scheduler.resume)


def _set_state(stack: Stack, job_id: str, state: str, tell_scheduler) -> dict:
    job = get_job(stack, job_id)
    job["state"] = state
    if Schedule(**job["schedule"]).cron_expression():
        tell_scheduler(job_id)
    return _save(stack, job)


def delete_job(stack: Stack, job_id: str, body=None) -> dict:
    """Removes the job, its schedule and its run history; the destination table stays unless
    the request says {"drop_table": true}."""
    body = body if isinstance(body, dict) else {}
    job = get_job(stack, job_id)
    stack.scheduler.delete(job_id)
    for run in stack.store.list(runs_collection(job_id)):
        stack.store.delete(runs_collection(job_id), run["id"])
    stack.store.delete(COLLECTION, job_id)
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    if body.get("drop_table") is True:
        stack.warehouse.drop_table(dataset, table)
    log.info("deleted job %s (table %s.%s %s)", job_id, dataset, table,
             "dropped" if body.get("drop_table") is True else "kept")
    return {"deleted": job_id, "table_dropped": body.get("drop_table") is True}


def run_now(stack: Stack, job_id: str) -> dict:
    get_job(stack, job_id)
    message_id = stack.publisher.publish(run_message(job_id, trigger="manual"))
    return {"job_id": job_id, "message_id": message_id}
