"""Runs whose worker died, and what they left behind (docs/architecture.md, "Run semantics").

- A run that took over a lapsed lease records the dead run `abandoned` and drops its staging table
  (a fanned-out run is not abandoned: the next trigger resumes it at its first unfinished chunk).
- At start-up a single-process stack (the demo) finds every run still marked running dead: they
  were its own.
- The sweep drops staging tables no working run owns: a run killed between making its staging
  table and dropping it leaves one behind.
"""

import logging
from dataclasses import replace
from datetime import timedelta

from ..job import COLLECTION, Job, Lease
from ..stack import Stack
from ..warehouse import STAGING_MARK
from . import lease
from .commit import staging_name
from .records import change_run, get_run, list_runs
from .state import ChunkStatus, Run, RunStatus

log = logging.getLogger(__name__)
WORKING = (RunStatus.RUNNING, RunStatus.COMMITTING)


def abandon(stack: Stack, job: Job, lapsed: Lease, taker: str) -> None:
    """The run that held `lapsed` stopped beating: record it and drop its staging table."""
    dead = get_run(stack, job.id, lapsed.run_id)
    if dead is None or dead.status not in WORKING or dead.chunks:
        return
    silent = lapsed.expires_at - timedelta(seconds=stack.settings.lease_seconds)
    reason = (
        f"Its worker stopped: no heartbeat since {silent:%Y-%m-%d %H:%M:%S} UTC. Nothing was committed; "
        f"run {taker} took the job over."
    )
    change_run(stack, job.id, dead.id, lambda r: r.finished(RunStatus.ABANDONED, stack.clock(), reason))
    stack.warehouse.drop_table(job.destination.dataset, staging_name(job, dead.id))
    log.warning("job %s: run %s abandoned (%s)", job.id, dead.id, reason)


def recover(stack: Stack) -> None:
    """At the start of a single-process stack: every working run was this process's, and is dead."""
    jobs = [Job.from_doc(doc) for doc in stack.store.list(COLLECTION)]
    for job in jobs:
        if job.lease is not None:
            lease.release(stack, job.id, job.lease.run_id, committed=False)
        for run in list_runs(stack, job.id):
            if run.status in WORKING:
                change_run(stack, job.id, run.id, lambda r: _stopped(stack, r))
                log.warning("job %s: run %s was cut off by a restart", job.id, run.id)
    for dataset in sorted({job.destination.dataset for job in jobs}):
        sweep(stack, dataset)


def _stopped(stack: Stack, run: Run) -> Run:
    if not run.chunks:
        return run.finished(
            RunStatus.ABANDONED,
            stack.clock(),
            "The process running it stopped (found at start-up). Nothing was committed.",
        )
    chunks = [
        replace(c, status=ChunkStatus.FAILED, error="cut off by a restart") if c.status is ChunkStatus.LOADING else c
        for c in run.chunks
    ]
    return replace(run, chunks=chunks).finished(
        RunStatus.FAILED,
        stack.clock(),
        "The process running it stopped. The next run resumes at its first unfinished chunk.",
    )


def sweep(stack: Stack, dataset: str) -> list[str]:
    """Drop the staging tables in `dataset` that no working run owns; returns their names."""
    staged = stack.warehouse.staging_tables(dataset)  # first: a table listed here was made by a run
    if not staged:  # that had its lease already, so the jobs read next name it while it works
        return []
    jobs = [Job.from_doc(doc) for doc in stack.store.list(COLLECTION)]
    working = {job.lease.run_id for job in jobs if job.lease} | {job.pending_run for job in jobs if job.pending_run}
    dropped = []
    for name in staged:
        if name.split(STAGING_MARK, 1)[1].split("_")[0] not in working:
            stack.warehouse.drop_table(dataset, name)
            dropped.append(name)
    if dropped:
        log.info("dropped staging tables no run owns: %s", ", ".join(dropped))
    return dropped
