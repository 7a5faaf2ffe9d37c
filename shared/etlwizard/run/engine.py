"""One run of one job, from its message to the watermark (docs/architecture.md, "A request" and
"Run semantics").

A run takes the job's lease (a trigger that finds it held is recorded as skipped), plans its window,
stages the rows, commits them with one MERGE and only then moves the watermark, in the same write
that frees the lease. A window too large for one worker fans out into chunks instead (chunks.py).

A message with the trigger "verify" (a job's verification schedule, checks.verify_schedule) loads
nothing: it verifies the job's committed history as on demand (on_demand.verify_job).
"""

import logging
from dataclasses import replace
from datetime import datetime

from .. import alerts
from ..connections import open_connection
from ..errors import EtlError, Interrupted
from ..job import Job, JobState
from ..jobs import get_job
from ..logs import FAILED_RUN_EVENT, fields, run_context
from ..schedulers import VERIFY
from ..stack import Stack
from . import lease
from .aftercare import after_run
from .chunks import fan_out, plan_chunks, resume, run_chunk
from .commit import commit, staging_name
from .costs import recording
from .heartbeat import heartbeat, stopped
from .plan import bound_text, plan_window, read_table
from .records import failure_message, get_run, save_run
from .recovery import abandon, sweep
from .stage import Progress, Reads, stage
from .state import Run, RunMessage, RunStatus

log = logging.getLogger(__name__)


def handle_message(stack: Stack, data: bytes) -> Run | None:
    """A run message as Pub/Sub or the local dispatcher delivers it."""
    message = RunMessage.from_bytes(data)
    if stack.stopping.is_set():  # transient: Pub/Sub delivers it again, to a process that runs
        raise Interrupted(f"Not started: this process is shutting down (job {message.job_id}).")
    if message.chunk is not None and message.run_id is not None:
        with (
            run_context(job_id=message.job_id, run_id=message.run_id, trigger="chunk", chunk=message.chunk),
            recording(stack, message.job_id, message.run_id) as costs,  # this chunk's BigQuery jobs
        ):
            try:
                run = run_chunk(stack, message.job_id, message.run_id, message.chunk)
            except Exception as e:
                _stopped(stack, message.job_id, message.run_id, e)
                raise
            return None if run is None else costs.done(_finished(stack, message.job_id, run))
    if message.trigger == VERIFY:
        return verify_on_schedule(stack, message.job_id)
    return run_job(stack, message.job_id, message.trigger)


def verify_on_schedule(stack: Stack, job_id: str) -> Run | None:
    """The job's verification schedule fired: verify all its committed history (alerting a mismatch,
    repairing if its checks.repair), recorded as a run with the trigger "verify". None when that is
    not a check: the job paused, its verification schedule gone, or not due (monthly past a month's end)."""
    from ..on_demand import verify_job  # on_demand reads run/: imported when needed, not at load

    job = get_job(stack, job_id)
    schedule = job.checks.verify_schedule
    if job.state is not JobState.ACTIVE or schedule is None or not schedule.is_due(stack.clock()):
        return None
    with run_context(job_id=job_id, trigger=VERIFY):
        done = verify_job(stack, job_id, {})
        log.info("job %s: scheduled verification %s", job_id, done["verification"].get("status"))
    return get_run(stack, job_id, done["run_id"])


def run_job(stack: Stack, job_id: str, trigger: str = "manual") -> Run | None:
    """Run the job now; None when a scheduled trigger is not a run (paused, or not due)."""
    job = get_job(stack, job_id)
    now = stack.clock()
    if trigger == "schedule" and (job.state is not JobState.ACTIVE or not job.schedule.is_due(now)):
        return None
    resumed = get_run(stack, job_id, job.pending_run) if job.pending_run else None  # a fanned-out run that failed
    run = resumed or Run.new(job_id, trigger, now)
    taken = lease.acquire(stack, job_id, run.id)
    if taken is None:
        return _skipped(stack, job_id, trigger, now)
    with run_context(job_id=job_id, run_id=run.id, trigger=trigger), recording(stack, job_id, run.id) as costs:
        if taken.lapsed is not None and taken.lapsed.run_id != run.id:
            abandon(stack, job, taken.lapsed, run.id)
        if run.chunks:
            try:
                return costs.done(_finished(stack, job_id, resume(stack, job, run)))
            except Exception as raised:
                _stopped(stack, job_id, run.id, raised)
                raise
        save_run(stack, run)
        try:
            run = _load(stack, job, run)
        except Exception as error:
            e = stopped(stack, error)
            lease.release(stack, job_id, run.id, committed=False)
            latest = get_run(stack, job_id, run.id) or run  # with the progress it saved
            status = RunStatus.INTERRUPTED if isinstance(e, Interrupted) else RunStatus.FAILED
            save_run(stack, latest.finished(status, stack.clock(), failure_message(e)))
            _stopped(stack, job_id, run.id, e)
            raise e from None
        _sweep(stack, job.destination.dataset)
        return costs.done(_finished(stack, job_id, run))


def _skipped(stack: Stack, job_id: str, trigger: str, now: datetime) -> Run:
    """Another run holds the lease: record the trigger as skipped, and alert if that run is stuck."""
    skipped = Run.new(job_id, trigger, now).finished(RunStatus.SKIPPED, now, "Another run of this job is in progress.")
    with run_context(job_id=job_id, run_id=skipped.id, trigger=trigger):
        save_run(stack, skipped)
        log.info("job %s: run skipped, another run holds the lease", job_id, extra=fields(event="run_skipped"))
        if alerts.skipped(stack, job_id, skipped) is not None:
            return get_run(stack, job_id, skipped.id) or skipped  # with the alert it recorded
    return skipped


def _finished(stack: Stack, job_id: str, run: Run) -> Run:
    """A call that left its run succeeded logs it with its numbers and checks its row count; one that
    fanned it out (or staged one chunk of it) says so."""
    if run.status is not RunStatus.SUCCEEDED:  # fanned out: its chunks load on, the last commits
        log.info("job %s run %s: %s, chunks loading", job_id, run.id, run.status, extra=fields(event="run_chunks"))
        return run
    log.info(
        "job %s run %s: succeeded, %s rows, %s bytes in %s s",
        job_id,
        run.id,
        run.rows,
        run.bytes,
        run.duration_seconds,
        extra=fields(event="run_succeeded", rows=run.rows, bytes=run.bytes, duration_seconds=run.duration_seconds),
    )
    after_run(stack, job_id, run)
    alerts.succeeded(stack, job_id, run)
    return get_run(stack, job_id, run.id) or run  # with what the checks and alerts recorded


def _stopped(stack: Stack, job_id: str, run_id: str, error: Exception) -> None:
    """A run (or one chunk of it) raised. A run recorded failed is logged once (the line infra/'s
    failed-runs metric counts: event run_failed) and alerted; anything else is logged as it is."""
    internal = not isinstance(error, EtlError)
    level = logging.ERROR if internal else logging.WARNING
    try:
        run = get_run(stack, job_id, run_id)
    except Exception:  # the store is down too: the error itself still reaches the log
        log.log(level, "job %s run %s: %s", job_id, run_id, failure_message(error), exc_info=True)
        return
    if run is None or run.status is not RunStatus.FAILED:
        status = run.status.value if run is not None else "stopped"
        log.log(level, "job %s run %s: %s: %s", job_id, run_id, status, failure_message(error), exc_info=internal)
        return
    if not alerts.claim(stack, job_id, alerts.AlertKind.RUN_FAILED, run.id):  # another chunk of it told
        log.log(level, "job %s run %s: %s", job_id, run_id, failure_message(error), exc_info=internal)
        return
    log.log(
        level,
        "job %s run %s failed: %s",
        job_id,
        run.id,
        run.error,
        exc_info=internal,
        extra=fields(
            event=FAILED_RUN_EVENT,
            rows=run.rows,
            bytes=run.bytes,
            duration_seconds=run.duration_seconds,
            error=run.error,
        ),
    )
    alerts.run_failed(stack, job_id, run)


def _load(stack: Stack, job: Job, run: Run) -> Run:
    """Plan the window, then stage and commit it here, or fan it out. Returns the run as this call
    left it in the job store: succeeded, or running while its chunks load (the last of them commits)."""
    settings, warehouse, dataset = stack.settings, stack.warehouse, job.destination.dataset
    with open_connection(stack, job.connection_id) as source:
        meta, columns = read_table(job, source)
        cursor = next((c for c in columns if c.name == job.timestamp_column), None) if job.cursor else None
        plan = plan_window(stack, job, source, meta, cursor)
        run = replace(run, window=plan.window)
        if plan.empty:  # nothing new yet: the watermark stays where it is
            return _succeeded(stack, run)
        chunks = plan_chunks(plan, settings.fanout_rows)
        if chunks and plan.split is not None:
            lease.mark_pending(stack, job.id, run.id)
            return fan_out(stack, job.id, replace(run, split_column=plan.split.name, chunks=chunks))
        save_run(stack, run)  # with its window
        slices = plan.slices(settings.chunk_rows) if source.reads_ahead else [(plan.lower, plan.upper)]
        reads = Reads(meta, columns, plan.split if len(slices) > 1 else cursor, slices)
        staging = staging_name(job, run.id)
        warehouse.create_staging(dataset, staging, columns)
        try:
            with heartbeat(stack, job.id, run.id, source.cancel) as pulse:
                progress = stage(
                    stack, source, reads, dataset, staging, pulse, report=lambda p: save_run(stack, _counted(run, p))
                )
                commit(stack, job, columns, plan.lower, plan.upper, [staging], run.id)
        finally:
            warehouse.drop_table(dataset, staging)
    return _succeeded(stack, _counted(run, progress), str(bound_text(plan.upper)) if cursor is not None else None)


def _succeeded(stack: Stack, run: Run, watermark: str | None = None) -> Run:
    """Committed: free the lease (moving the watermark, for a transactional window), record the run."""
    lease.release(stack, run.job_id, run.id, committed=True, watermark=watermark)
    done = run.finished(RunStatus.SUCCEEDED, stack.clock())
    save_run(stack, done)
    return done


def _sweep(stack: Stack, dataset: str) -> None:
    """Staging tables that dead runs left in the dataset go; a failure here fails no run."""
    try:
        sweep(stack, dataset)
    except Exception:
        log.warning("sweeping staging tables in %s failed", dataset, exc_info=True)


def _counted(run: Run, progress: Progress) -> Run:
    return replace(run, rows=progress.rows, bytes=progress.bytes, dropped_array_nulls=progress.dropped_array_nulls)
