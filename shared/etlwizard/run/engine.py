"""One run of one job, from its message to the watermark (docs/architecture.md, "A request" and
"Run semantics").

A run takes the job's lease (a trigger that finds it held is recorded as skipped), plans its window,
stages the rows, commits them with one MERGE and only then moves the watermark, in the same write
that frees the lease. A window too large for one worker fans out into chunks instead (chunks.py).
"""

import logging
from dataclasses import replace

from ..connections import open_connection
from ..errors import EtlError, Interrupted
from ..job import Job, JobState
from ..jobs import get_job
from ..stack import Stack
from . import lease
from .chunks import fan_out, plan_chunks, resume, run_chunk
from .commit import commit, staging_name
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
        return run_chunk(stack, message.job_id, message.run_id, message.chunk)
    return run_job(stack, message.job_id, message.trigger)


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
        skipped = Run.new(job_id, trigger, now).finished(
            RunStatus.SKIPPED, now, "Another run of this job is in progress."
        )
        save_run(stack, skipped)
        log.info("job %s: run skipped, another run holds the lease", job_id)
        return skipped
    if taken.lapsed is not None and taken.lapsed.run_id != run.id:
        abandon(stack, job, taken.lapsed, run.id)
    if run.chunks:
        return resume(stack, job, run)
    save_run(stack, run)
    try:
        run = _load(stack, job, run)
    except Exception as error:
        e = stopped(stack, error)
        lease.release(stack, job_id, run.id, committed=False)
        latest = get_run(stack, job_id, run.id) or run  # with the progress it saved
        status = RunStatus.INTERRUPTED if isinstance(e, Interrupted) else RunStatus.FAILED
        save_run(stack, latest.finished(status, stack.clock(), failure_message(e)))
        log.log(
            logging.WARNING if isinstance(e, EtlError) else logging.ERROR,
            "job %s run %s failed: %s",
            job_id,
            run.id,
            failure_message(e),
            exc_info=not isinstance(e, EtlError),
        )
        raise e from None
    log.info("job %s run %s: %s, %s rows, %s bytes", job_id, run.id, run.status, run.rows, run.bytes)
    _sweep(stack, job.destination.dataset)
    return run


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
