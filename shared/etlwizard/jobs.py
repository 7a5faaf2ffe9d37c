"""ETL jobs: create (with the destination table), read, edit, reconnect, pause, resume, delete, run now.

A job is one document in the job store (job.py); its runs are the sub-collection jobs/<id>/runs.
Every change that touches the schedule goes through the stack's scheduler, and "Run now" publishes
the same message Cloud Scheduler would. A job's checks (`checks`: verification, repair, rows deleted
at the source) and its own alert channels (`alerts`: alerts.py) are set on create and edit; the
checks on demand are on_demand.py's; verification on a schedule of its own (checks.verify_schedule) is
the job's second scheduler entry, paused, resumed and deleted with the first.
"""

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from . import alerts
from .connections import get_connection, open_connection
from .errors import EtlError, InvalidInput, NotFound, SchemaIncompatible
from .health import JobHealth, assess, loads, newest_first
from .job import (
    COLLECTION,
    DELETED_ROWS,
    Checks,
    Destination,
    DestinationMode,
    Job,
    JobState,
    LoadType,
    runs_collection,
)
from .job_checks import check_destination, check_keys, select_columns
from .model import backfill_start, default_table_name, source_id
from .payload import (
    optional_bool,
    optional_id,
    optional_text,
    require_choice,
    require_id,
    require_names,
    require_object,
    require_text,
)
from .run.costs import by_month
from .run.state import Run, RunMessage
from .schedulers import LOAD, VERIFY
from .scheduling import Schedule
from .stack import Stack
from .store import Document
from .warehouse import check_dataset, check_table

log = logging.getLogger(__name__)


def get_job(stack: Stack, job_id: str) -> Job:
    doc = stack.store.get(COLLECTION, job_id)
    if doc is None:
        raise NotFound(f"job {job_id} does not exist")
    return Job.from_doc(doc)


def next_three(schedule: Schedule) -> list[datetime]:
    return schedule.next_runs(3)


def present(
    job: Job,
    runs: Sequence[Document] | None = None,
    health: JobHealth | None = None,
    upcoming: Callable[[Schedule], list[datetime]] = next_three,
) -> dict[str, Any]:
    """A job as the API shows it: with its cron and next three run times (`upcoming`: a list of many
    jobs asks once per schedule); given its runs' documents (newest first) its last run (the newest
    that loads: a verification on demand is not one), and given its health (health.py) that too.
    Its `checks` and `alerts` as stored: a webhook by its host only (its URL is in the secret store)."""
    coming = upcoming(job.schedule) if job.state is JobState.ACTIVE else []
    shown = {k: v for k, v in job.to_doc().items() if k != "lease"}
    shown.update(cron=job.schedule.cron_expression(), next_runs=[t.isoformat() for t in coming])
    if runs is not None:
        loaded = loads(runs)
        shown["last_run"] = show_run(loaded[0]) if loaded else None
    if health is not None:
        shown["health"] = health.to_dict()
    return shown


# What other parts of the product add to a run document (verification, the deleted-rows sweep,
# alerts): shown in the run history as stored, whether or not `Run` reads them.
RUN_EXTRAS = ("verification", "deleted_rows", "alerts")


def show_run(doc: Document) -> dict[str, Any]:
    shown = Run.from_doc(doc).to_doc()
    shown.update({name: doc[name] for name in RUN_EXTRAS if name in doc and name not in shown})
    return shown


def run_docs(stack: Stack, job_id: str) -> list[Document]:
    """The job's run documents, newest first."""
    return newest_first(stack.store.list(runs_collection(job_id)))


def read_job(stack: Stack, job_id: str) -> dict[str, Any]:
    """The job, its health, and what its runs used of BigQuery per month (run/costs.py)."""
    job = get_job(stack, job_id)
    runs = run_docs(stack, job_id)
    shown = present(job, runs, assess(job, runs, stack.settings.lease_seconds))
    return shown | {"bigquery_by_month": by_month(Run.from_doc(doc) for doc in runs)}


def job_runs(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    get_job(stack, job_id)
    return [show_run(doc) for doc in run_docs(stack, job_id)]


# --- Create ------------------------------------------------------------------------------------


def create_job(stack: Stack, body: object) -> dict[str, Any]:
    body = require_object(body)
    name = require_text(body, "name", max_length=200)
    connection = get_connection(stack, require_id(body, "connection_id"))
    schema_name, table_name = require_text(body, "schema_name"), require_text(body, "table_name")
    load_type = LoadType(require_choice(body, "load_type", tuple(LoadType)))
    selected = require_names(body, "selected_columns")
    transactional = load_type is LoadType.TRANSACTIONAL
    cursor = optional_text(body, "timestamp_column") if transactional else None
    start = None
    if transactional:
        choice = optional_text(body, "historical_backfill") or (
            "custom" if body.get("historical_start_date") else "all"
        )
        start = backfill_start(choice, body.get("historical_start_date"), stack.clock().date())
    schedule = Schedule.from_payload(body.get("schedule"))
    destination = require_object({} if body.get("destination") is None else body["destination"], "destination")
    mode = DestinationMode(
        require_choice(destination, "mode", tuple(DestinationMode), default="new", field="destination.mode")
    )
    dataset = check_dataset(_given(destination, "dataset", stack.settings.dataset), "destination.dataset")
    add_missing = optional_bool(destination, "add_missing_columns", field="destination.add_missing_columns")

    with open_connection(stack, connection.id) as source:
        meta = source.fetch_table_metadata(schema_name, table_name)
    columns = select_columns(meta, selected, "selected_columns")
    primary_key = (
        require_names(body, "primary_key", optional=True)
        if "primary_key" in body
        else [k for k in meta.primary_key if k in selected]
    )
    check_keys(meta, selected, load_type, cursor, primary_key)
    checks = read_checks(body.get("checks"), Checks(), load_type, primary_key)
    channels = alerts.read_channels(body.get("alerts"))
    table = check_table(_given(destination, "table", default_table_name(table_name)), "destination.table")

    report = None
    if mode is DestinationMode.NEW:
        stack.warehouse.create_table(dataset, table, columns, partition_field=cursor, cluster_fields=primary_key)
    else:
        report = check_destination(stack, dataset, table, [c.to_dict() for c in columns], primary_key, cursor)
        if not report.compatible:
            raise SchemaIncompatible("Schema incompatible", details=report.errors)
        if report.can_alter:
            if not add_missing:
                missing = ", ".join(c["name"] for c in report.can_alter)
                raise SchemaIncompatible(
                    "Schema incompatible",
                    details=[
                        f"The table lacks column(s) {missing}: set destination.add_missing_columns to "
                        "add them (NULLABLE), or leave them out of selected_columns."
                    ],
                )
            added = {a["name"] for a in report.can_alter}
            stack.warehouse.add_columns(dataset, table, [c for c in columns if c.name in added])

    now = stack.clock()
    job = Job(
        id=uuid.uuid4().hex[:12],
        name=name,
        connection_id=connection.id,
        schema_name=meta.schema_name,
        table_name=meta.table_name,
        source_id=source_id(connection, meta.schema_name, meta.table_name),
        selected_columns=selected,
        columns=columns,
        load_type=load_type,
        timestamp_column=cursor,
        primary_key=primary_key,
        historical_start_date=start,
        destination=Destination(mode, dataset, table),
        schedule=schedule,
        state=JobState.ACTIVE,
        watermark=None,
        created_at=now,
        updated_at=now,
        checks=checks,
    )
    stack.store.put(COLLECTION, job.id, job.to_doc())
    stack.scheduler.upsert(job.id, schedule)
    if checks.verify_schedule is not None:
        stack.scheduler.upsert(job.id, checks.verify_schedule, trigger=VERIFY)
    if not channels.empty:
        job = alerts.apply_channels(stack, job.id, channels)
    if job.marks_deleted:
        _add_deleted_at(stack, job)
    log.info("created job %s (%s -> %s.%s)", job.id, job.source_id, dataset, table)
    out = present(job)
    if report is not None:
        out["compatibility"] = report.to_dict()
    return out


CHECKS = ("verify", "repair", "deleted_rows", "sweep_every_run", "verify_schedule")
CATALOG_DROPS_DELETED = (
    "a catalog load already drops deleted rows: each run replaces this source's rows with the table as it "
    "is now, so keep is the only choice"
)


def read_checks(value: object, current: Checks, load_type: LoadType, primary_key: list[str]) -> Checks:
    """A request's `checks` object, {verify?, repair?, deleted_rows?, sweep_every_run?,
    verify_schedule?}, over the job's `current` ones (a field left out keeps its value; null or no
    object keeps them all). verify_schedule is shaped as the job's `schedule`; null or a manual one
    is none. InvalidInput names the field: a deleted_rows of mark or remove needs a transactional job
    with a primary key."""
    if value is None:
        return current
    given = require_object(value, "checks")
    unknown = sorted(set(given) - set(CHECKS))
    if unknown:
        raise InvalidInput(f"checks.{unknown[0]}", f"not a field of checks ({', '.join(CHECKS)})")
    changes: dict[str, Any] = {}
    for name in ("verify", "repair", "sweep_every_run"):
        if name in given:
            changes[name] = optional_bool(given, name, field=f"checks.{name}")
    if "deleted_rows" in given:
        changes["deleted_rows"] = require_choice(given, "deleted_rows", DELETED_ROWS, field="checks.deleted_rows")
    if "verify_schedule" in given:
        changes["verify_schedule"] = read_verify_schedule(given["verify_schedule"])
    checks = replace(current, **changes)
    if checks.deleted_rows != "keep":
        from .run.deletes import NO_KEY  # run/ reads jobs: imported when needed, not at load

        if load_type is not LoadType.TRANSACTIONAL:
            raise InvalidInput("checks.deleted_rows", CATALOG_DROPS_DELETED)
        if not primary_key:
            raise InvalidInput("checks.deleted_rows", NO_KEY)
    return checks


def read_verify_schedule(value: object) -> Schedule | None:
    """checks.verify_schedule: a schedule as the job's own is given, its fields named
    checks.verify_schedule.<field> when refused; None for null or a manual one."""
    try:
        schedule = Schedule.from_payload(value)
    except InvalidInput as e:
        problem = e.details[0]["problem"] if e.details else e.message
        raise InvalidInput(f"checks.verify_{e.field}", problem) from None
    return None if schedule.cron_expression() is None else schedule


def _schedule_verification(stack: Stack, job: Job, checks: Checks) -> None:
    """The job's verification entry in the scheduler as its new `checks` say (none: removed)."""
    if checks.verify_schedule == job.checks.verify_schedule:
        return
    if checks.verify_schedule is None:
        stack.scheduler.delete(job.id, trigger=VERIFY)
    else:
        paused = job.state is JobState.PAUSED
        stack.scheduler.upsert(job.id, checks.verify_schedule, paused=paused, trigger=VERIFY)


def _add_deleted_at(stack: Stack, job: Job) -> None:
    """The column marking deleted rows, added now that they are marked: the next run's MERGE sets it
    (the run adds it too if this fails, so a failure here is logged, not answered)."""
    try:
        stack.warehouse.add_deleted_at(job.destination.dataset, job.destination.table)
    except EtlError as e:
        log.warning("job %s: _etl_deleted_at not added to its table yet: %s", job.id, e.message)


def _given(body: dict[str, Any], name: str, default: str) -> object:
    """A field the request may leave out (absent or ""): the default then; anything else is checked."""
    value = body.get(name)
    return default if value is None or value == "" else value


# --- Actions -------------------------------------------------------------------------------------


def _save(stack: Stack, job_id: str, **changes: Any) -> Job:
    """Set these fields of the job in one transaction: what a run changed meanwhile (its lease, the
    watermark, alerts claimed, the last sweep) stays as it is."""

    def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if doc is None else replace(Job.from_doc(doc), **changes, updated_at=stack.clock()).to_doc()

    changed = stack.store.transact(COLLECTION, job_id, change)
    if changed is None:
        raise NotFound(f"job {job_id} does not exist")
    return Job.from_doc(changed)


def update_job(stack: Stack, job_id: str, body: object) -> dict[str, Any]:
    """PATCH: name, schedule, selected_columns (new columns are added to the destination table),
    checks, alerts."""
    body = require_object(body)
    job = get_job(stack, job_id)
    # every field checked first: a request refused changes nothing
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = require_text(body, "name", max_length=200)
    if "schedule" in body:
        changes["schedule"] = Schedule.from_payload(body["schedule"])
    if "checks" in body:
        changes["checks"] = read_checks(body["checks"], job.checks, job.load_type, job.primary_key)
    channels = alerts.read_channels(body.get("alerts"))
    if "selected_columns" in body:
        selected = require_names(body, "selected_columns")
        with open_connection(stack, job.connection_id) as source:
            meta = source.fetch_table_metadata(job.schema_name, job.table_name)
        columns = select_columns(meta, selected, "selected_columns")
        check_keys(meta, selected, job.load_type, job.timestamp_column, job.primary_key)
        stack.warehouse.add_columns(job.destination.dataset, job.destination.table, columns)
        changes.update(selected_columns=selected, columns=columns)
    if "schedule" in body:
        stack.scheduler.upsert(job_id, changes["schedule"], paused=job.state is JobState.PAUSED)
    if "checks" in body:
        _schedule_verification(stack, job, changes["checks"])
    saved = _save(stack, job_id, **changes)
    if not channels.empty:
        saved = alerts.apply_channels(stack, job_id, channels)
    if saved.marks_deleted and not job.marks_deleted:
        _add_deleted_at(stack, saved)
    return present(saved)


def reconnect_job(stack: Stack, job_id: str, body: object) -> dict[str, Any]:
    """A new connection and/or source table for the same destination; the watermark is kept."""
    body = require_object(body)
    job = get_job(stack, job_id)
    connection = get_connection(stack, optional_id(body, "connection_id") or job.connection_id)
    schema_name = optional_text(body, "schema_name") or job.schema_name
    table_name = optional_text(body, "table_name") or job.table_name
    with open_connection(stack, connection.id) as source:
        meta = source.fetch_table_metadata(schema_name, table_name)
    columns = select_columns(meta, job.selected_columns, "selected_columns")
    check_keys(meta, job.selected_columns, job.load_type, job.timestamp_column, job.primary_key)
    report = check_destination(
        stack,
        job.destination.dataset,
        job.destination.table,
        [c.to_dict() for c in columns],
        job.primary_key,
        job.timestamp_column,
    )
    if not report.compatible or report.can_alter:
        raise SchemaIncompatible(
            "Schema incompatible",
            details=report.errors + [f"Column {c['name']} is not in the table." for c in report.can_alter],
        )
    saved = _save(
        stack,
        job_id,
        connection_id=connection.id,
        schema_name=meta.schema_name,
        table_name=meta.table_name,
        columns=columns,
    )
    return present(saved) | {"compatibility": report.to_dict()}


def pause_job(stack: Stack, job_id: str) -> dict[str, Any]:
    return _set_state(stack, job_id, JobState.PAUSED, stack.scheduler.pause)


def resume_job(stack: Stack, job_id: str) -> dict[str, Any]:
    return _set_state(stack, job_id, JobState.ACTIVE, stack.scheduler.resume)


def _set_state(
    stack: Stack, job_id: str, state: JobState, tell_scheduler: Callable[[str, str], None]
) -> dict[str, Any]:
    """Pause or resume the job, and its scheduler entries with it: its loads' and its verification's."""
    job = get_job(stack, job_id)
    if job.schedule.cron_expression():
        tell_scheduler(job_id, LOAD)
    if job.checks.verify_schedule is not None:
        tell_scheduler(job_id, VERIFY)
    return present(_save(stack, job_id, state=state))


def delete_job(stack: Stack, job_id: str, body: object = None) -> dict[str, Any]:
    """Removes the job, its schedule and its run history; the destination table stays unless
    the request says {"drop_table": true}."""
    drop = optional_bool(require_object(body if body is not None else {}), "drop_table")
    job = get_job(stack, job_id)
    stack.scheduler.delete(job_id)
    stack.scheduler.delete(job_id, trigger=VERIFY)
    for run in stack.store.list(runs_collection(job_id)):
        stack.store.delete(runs_collection(job_id), run["id"])
    stack.store.delete(COLLECTION, job_id)
    alerts.forget_channels(stack, job_id)
    if drop:
        stack.warehouse.drop_table(job.destination.dataset, job.destination.table)
    log.info(
        "deleted job %s (table %s.%s %s)",
        job_id,
        job.destination.dataset,
        job.destination.table,
        "dropped" if drop else "kept",
    )
    return {"deleted": job_id, "table_dropped": drop}


def run_now(stack: Stack, job_id: str) -> dict[str, Any]:
    get_job(stack, job_id)
    message_id = stack.publisher.publish(RunMessage(job_id, trigger="manual").to_bytes())
    return {"job_id": job_id, "message_id": message_id}
