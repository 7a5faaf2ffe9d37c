"""The job's lease: one run per job at a time, kept in the job's own document.

Every change goes through the store's transaction, so two triggers racing for a job cannot both win,
and the watermark moves in the same write that frees the lease, after the run committed.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from ..job import COLLECTION, Job, Lease
from ..stack import Stack


def _change(stack: Stack, job_id: str, change: Callable[[Job], Job | None]) -> Job | None:
    def mutate(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        changed = change(Job.from_doc(doc))
        return None if changed is None else changed.to_doc()

    result = stack.store.transact(COLLECTION, job_id, mutate)
    return None if result is None else Job.from_doc(result)


def _held_by(job: Job, run_id: str) -> bool:
    return job.lease is not None and job.lease.run_id == run_id


@dataclass(frozen=True)
class Taken:
    """The lease is ours; `lapsed` names the run that held it before and stopped beating, if any."""

    lapsed: Lease | None


def acquire(stack: Stack, job_id: str, run_id: str) -> Taken | None:
    """Take the lease for run_id unless another run holds one that has not lapsed (None then)."""
    lapsed: list[Lease] = []

    def take(job: Job) -> Job | None:
        now = stack.clock()
        lapsed.clear()  # a store may run this more than once
        if job.lease is not None and job.lease.expires_at > now:
            return None
        if job.lease is not None and job.lease.run_id != run_id:
            lapsed.append(job.lease)
        return replace(job, lease=Lease(run_id, now + timedelta(seconds=stack.settings.lease_seconds)))

    return None if _change(stack, job_id, take) is None else Taken(lapsed[0] if lapsed else None)


def renew(stack: Stack, job_id: str, run_id: str) -> bool:
    """A run still working pushes its lease's expiry on (the expiry is taken inside the transaction,
    so renewals from several chunk workers only move it forward). False: the lease is another's."""

    def extend(job: Job) -> Job | None:
        if not _held_by(job, run_id):
            return None
        return replace(job, lease=Lease(run_id, stack.clock() + timedelta(seconds=stack.settings.lease_seconds)))

    return _change(stack, job_id, extend) is not None


def release(stack: Stack, job_id: str, run_id: str, *, committed: bool, watermark: str | None = None) -> None:
    """Free the lease; after a committed run also clear a pending resume and, for a transactional
    window, move the watermark to its upper bound."""

    def free(job: Job) -> Job | None:
        if not _held_by(job, run_id):
            return None
        if not committed:
            return replace(job, lease=None)
        return replace(job, lease=None, pending_run=None, watermark=watermark or job.watermark)

    _change(stack, job_id, free)


def mark_pending(stack: Stack, job_id: str, run_id: str) -> None:
    """A run fanned out into chunks: until it commits, the next trigger resumes it."""
    _change(stack, job_id, lambda job: replace(job, pending_run=run_id))
