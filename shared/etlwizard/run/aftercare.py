"""What a job does after a run succeeds, as its checks ask (job.Checks): verify the run's window
against the source (alerting a mismatch, repairing it when asked) and sweep for rows deleted at the
source (after every run, or when the last sweep is a day old). Their results go on the run's
document as `verification` and `deleted_rows`. Nothing here fails the run: it has committed.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from .. import alerts
from ..errors import EtlError
from ..job import COLLECTION
from ..jobs import get_job
from ..stack import Stack
from .deletes import sweep
from .records import annotate_run
from .state import Run
from .verify import Verification, repair, verify

log = logging.getLogger(__name__)
SWEEP_EVERY = timedelta(days=1)
REPAIR_TRIGGER = "repair"  # a catalog job's repair is a run of its own, which repairs nothing more


def after_run(stack: Stack, job_id: str, run: Run) -> None:
    try:
        job = get_job(stack, job_id)
        if job.checks.verify:
            _verify(stack, job_id, run)
        now = stack.clock()
        due = job.last_swept_at is None or now - datetime.fromisoformat(job.last_swept_at) >= SWEEP_EVERY
        if job.checks.deleted_rows != "keep" and (job.checks.sweep_every_run or due):
            swept = sweep(stack, job_id)
            annotate_run(stack, job_id, run.id, deleted_rows=swept.to_doc())
            if swept.status == "done":
                stack.store.transact(
                    COLLECTION, job_id, lambda doc: None if doc is None else {**doc, "last_swept_at": now.isoformat()}
                )
    except Exception:
        log.exception("job %s run %s: checks after the run failed", job_id, run.id)


def _verify(stack: Stack, job_id: str, run: Run) -> None:
    lower, upper = (run.window.lower, run.window.upper) if run.window is not None else (None, None)
    found = verify(stack, job_id, lower, upper)
    result: dict[str, Any] = found.to_doc()
    if found.status == "mismatched":
        alert_mismatch(stack, job_id, run.id, found)
        if get_job(stack, job_id).checks.repair and run.trigger != REPAIR_TRIGGER:
            result["repaired"] = try_repair(stack, job_id, found, lower, upper).to_doc()
    annotate_run(stack, job_id, run.id, verification=result)


def alert_mismatch(stack: Stack, job_id: str, run_id: str, found: Verification) -> None:
    """A mismatch alert, once per run and verification."""
    job = get_job(stack, job_id)
    buckets = ", ".join(m.bucket for m in found.mismatched[:5])
    message = f"{job.name}: {len(found.mismatched)} buckets differ from the source ({buckets})"
    details = {"verification_id": f"{run_id}:{found.checked_at}", **found.to_doc()}
    alerts.notify(stack, job, alerts.Alert.new(alerts.AlertKind.MISMATCH, job, run_id, message, stack.clock(), details))


def try_repair(
    stack: Stack, job_id: str, found: Verification, lower: str | None = None, upper: str | None = None
) -> Verification:
    """Repair's result; a repair that broke (a source gone mid-way) is a failed result, not an answer
    that loses the mismatch found."""
    try:
        return repair(stack, job_id, found, lower, upper)
    except EtlError as e:
        log.warning("job %s: repair failed: %s", job_id, e.message)
        return Verification("failed", stack.clock().isoformat(), found.scope, message=f"not repaired: {e.message}")
