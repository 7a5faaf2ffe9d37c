"""Large windows: split into chunks that fan out as messages (parallel run-job calls on Google Cloud,
the worker pool locally), each staged on its own; the chunk that finds all others done commits them
all with the one MERGE. A failed chunk fails the run; the next trigger resumes it at that chunk."""

import logging
from dataclasses import replace
from datetime import timedelta

from ..connections import open_connection
from ..errors import Interrupted, NotFound
from ..job import Job
from ..jobs import get_job
from ..stack import Stack
from . import lease
from .commit import commit, staging_name
from .heartbeat import heartbeat, stopped
from .plan import Plan, bound_text, cut, parse_bound, read_table, window_stats
from .records import change_run, failure_message, get_run, save_run
from .stage import Progress, Reads, stage
from .state import Chunk, ChunkStatus, Run, RunMessage, RunStatus

log = logging.getLogger(__name__)


def plan_chunks(plan: Plan, size: int) -> list[Chunk]:
    """The chunks of a window holding more than `size` rows; [] when it is loaded in one piece."""
    slices = plan.slices(size)
    if len(slices) < 2:
        return []
    return [Chunk(i, bound_text(lower), bound_text(upper)) for i, (lower, upper) in enumerate(slices)]


def fan_out(stack: Stack, job_id: str, run: Run) -> Run:
    """Publish a message for every chunk not loaded yet: the first run, or a resumed one."""
    run = replace(run, status=RunStatus.RUNNING, error=None, finished_at=None, duration_seconds=None)
    save_run(stack, run)
    stale = (stack.clock() - timedelta(seconds=stack.settings.lease_seconds)).isoformat()
    # a chunk still loading elsewhere is left to its worker, unless that worker stopped beating
    todo = [
        c
        for c in run.chunks
        if c.status in (ChunkStatus.PENDING, ChunkStatus.FAILED)
        or (c.status is ChunkStatus.LOADING and (c.heartbeat_at or "") < stale)
    ]
    for chunk in todo:
        stack.publisher.publish(RunMessage(job_id, run_id=run.id, chunk=chunk.index).to_bytes())
    log.info("job %s run %s: %d chunks to load", job_id, run.id, len(todo))
    return run


def run_chunk(stack: Stack, job_id: str, run_id: str, index: int) -> Run | None:
    """Stage one chunk into its own staging table; the chunk that finds all others done commits."""
    job = get_job(stack, job_id)
    run = get_run(stack, job_id, run_id)
    if run is None or not 0 <= index < len(run.chunks) or run.chunks[index].status is ChunkStatus.DONE:
        return run  # a redelivered message: already loaded
    since = stack.clock().isoformat()
    run = change_run(
        stack,
        job_id,
        run_id,
        lambda r: r.with_chunk(
            index, status=ChunkStatus.LOADING, heartbeat_at=since, attempts=r.chunks[index].attempts + 1
        ),
    )

    def beat() -> None:  # the chunk's own heartbeat, beside the lease's: fan_out tells dead chunks by it
        now = stack.clock().isoformat()
        change_run(stack, job_id, run_id, lambda r: r.with_chunk(index, heartbeat_at=now))

    chunk, dataset = run.chunks[index], job.destination.dataset
    try:
        with open_connection(stack, job.connection_id) as source:
            meta, columns = read_table(job, source)
            split = meta.column(run.split_column or "")
            if split is None:
                raise NotFound(f"column {run.split_column} is no longer in {job.schema_name}.{job.table_name}")
            lower, upper = parse_bound(chunk.lower, split.bigquery_type), parse_bound(chunk.upper, split.bigquery_type)
            slices = [(lower, upper)]
            if source.reads_ahead:
                slices = cut(
                    window_stats(source, meta, split, lower, upper), split, lower, upper, stack.settings.chunk_rows
                )
            staging = staging_name(job, run_id, index)
            stack.warehouse.create_staging(dataset, staging, columns)
            with heartbeat(stack, job_id, run_id, source.cancel, beat) as pulse:
                progress = stage(stack, source, Reads(meta, columns, split, slices), dataset, staging, pulse)
    except Exception as raised:
        e = stopped(stack, raised)
        error = failure_message(e)
        status = RunStatus.INTERRUPTED if isinstance(e, Interrupted) else RunStatus.FAILED
        change_run(stack, job_id, run_id, lambda r: _failed(stack, r, index, error, status))
        lease.release(stack, job_id, run_id, committed=False)  # the next trigger resumes at this chunk
        raise e from None
    finished = change_run(stack, job_id, run_id, lambda r: _done(r, index, progress))
    if finished.status is RunStatus.COMMITTING:
        return commit_chunks(stack, job, finished)
    return finished


def _failed(stack: Stack, run: Run, index: int, error: str, status: RunStatus) -> Run:
    return run.with_chunk(index, status=ChunkStatus.FAILED, error=error).finished(
        status,
        stack.clock(),
        f"Chunk {index + 1} of {len(run.chunks)} failed: {error} The next run resumes at it.",
    )


def _done(run: Run, index: int, progress: Progress) -> Run:
    run = run.with_chunk(index, status=ChunkStatus.DONE, rows=progress.rows, bytes=progress.bytes, error=None)
    run = replace(
        run,
        rows=sum(c.rows for c in run.chunks),
        bytes=sum(c.bytes for c in run.chunks),
        dropped_array_nulls=run.dropped_array_nulls + progress.dropped_array_nulls,
    )
    if all(c.status is ChunkStatus.DONE for c in run.chunks) and run.status is RunStatus.RUNNING:
        run = replace(run, status=RunStatus.COMMITTING)  # exactly one chunk handler sees this transition
    return run


def resume(stack: Stack, job: Job, run: Run) -> Run:
    """A fanned-out run that failed, taken up again: its chunks not loaded yet go out again; when all
    were staged and only the commit failed, the commit is tried again."""
    if all(c.status is ChunkStatus.DONE for c in run.chunks):
        committing = replace(run, status=RunStatus.COMMITTING, error=None, finished_at=None, duration_seconds=None)
        save_run(stack, committing)
        return commit_chunks(stack, job, committing)
    return fan_out(stack, job.id, run)


def commit_chunks(stack: Stack, job: Job, run: Run) -> Run:
    """Merge every chunk's staging table with the one MERGE; the job's own columns say what to merge,
    so the source need not answer now."""
    stagings = [staging_name(job, run.id, c.index) for c in run.chunks]
    cursor = job.cursor
    lower = upper = None
    if cursor is not None and run.window is not None:
        lower = parse_bound(run.window.lower, cursor.bigquery_type)
        upper = parse_bound(run.window.upper, cursor.bigquery_type)
    try:
        commit(stack, job, job.columns, lower, upper, stagings, run.id)
    except Exception as e:
        error = failure_message(e)
        change_run(stack, job.id, run.id, lambda r: r.finished(RunStatus.FAILED, stack.clock(), error))
        lease.release(stack, job.id, run.id, committed=False)
        raise
    lease.release(
        stack, job.id, run.id, committed=True, watermark=run.window.upper if cursor is not None and run.window else None
    )
    for staging in stagings:
        stack.warehouse.drop_table(job.destination.dataset, staging)
    log.info("job %s run %s: %s rows in %d chunks", job.id, run.id, run.rows, len(run.chunks))
    return change_run(stack, job.id, run.id, lambda r: r.finished(RunStatus.SUCCEEDED, stack.clock()))
