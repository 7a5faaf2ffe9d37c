"""A job's checks on demand (README, "Verification" and "Deleted rows"): the job page's Verify and
Find deleted rows, POST /api/etl/jobs/<id>/verify/ and /sweep/.

Each is a run of its own in the job's history, with the trigger "verify" or "sweep" (health.py's
CHECK_TRIGGERS: they load nothing, so they are not the job's last run and do not end a failing
streak), its result on the run's document as aftercare.py records it after a load: `verification`
(with `repaired` when it repaired) or `deleted_rows`. The run is saved running first, so a mismatch
alert can be recorded on it, and finished once the result is there: succeeded when the check could
say something, failed with its reason when it could not (a source out of reach, a repair that broke).

Verification reads only, so it runs while a load holds the job's lease; repair takes the lease, and
answers "not repaired: a run of the job is in progress" when it cannot.
"""

import logging
from typing import Any

from .errors import Conflict, InvalidInput
from .job import COLLECTION, runs_collection
from .jobs import get_job, show_run
from .payload import optional_bool, require_object
from .run.aftercare import alert_mismatch, try_repair
from .run.deletes import Sweep, sweep
from .run.records import annotate_run, change_run, failure_message, save_run
from .run.state import Run, RunStatus
from .run.verify import verify
from .stack import Stack

log = logging.getLogger(__name__)

VERIFY_TRIGGER = "verify"
SWEEP_TRIGGER = "sweep"


def verify_job(stack: Stack, job_id: str, body: object) -> dict[str, Any]:
    """Verify all of the job's committed history now, and repair what differs if the body says
    {"repair": true} (or, leaving it out, the job's checks.repair does). A mismatch is alerted as
    after a run. Answers the run's id, the verification (with `repaired`) and the run."""
    given = require_object(body if body is not None else {})
    _only(given, ("repair",))
    job = get_job(stack, job_id)
    repairing = optional_bool(given, "repair") if "repair" in given else job.checks.repair
    run = _started(stack, job_id, VERIFY_TRIGGER)
    try:
        found = verify(stack, job_id)
        result: dict[str, Any] = found.to_doc()
        if found.status == "mismatched":
            alert_mismatch(stack, job_id, run.id, found)
            if repairing:
                result["repaired"] = try_repair(stack, job_id, found).to_doc()
        annotate_run(stack, job_id, run.id, verification=result)
    except Exception as e:
        _finish(stack, job_id, run, failure_message(e))
        raise
    repaired = result.get("repaired") or {}
    error = None
    if found.status == "failed":
        error = f"Could not verify: {found.message}"
    elif repaired.get("status") == "failed":
        error = repaired["message"]
    return {"run_id": run.id, "verification": result, "run": _finish(stack, job_id, run, error)}


def sweep_job(stack: Stack, job_id: str, body: object) -> dict[str, Any]:
    """Find the job's rows deleted at the source now and mark or remove them, as its
    checks.deleted_rows says (409 when it keeps them). Answers the run's id, the sweep and the run."""
    _only(require_object(body if body is not None else {}), ())
    job = get_job(stack, job_id)
    if job.checks.deleted_rows == "keep":
        raise Conflict(
            f"Job {job.name} keeps rows deleted at the source: set its checks.deleted_rows to mark or remove "
            "to find them."
        )
    run = _started(stack, job_id, SWEEP_TRIGGER)
    try:
        swept = sweep(stack, job_id)
        annotate_run(stack, job_id, run.id, deleted_rows=swept.to_doc())
        if swept.status == "done":
            _swept_at(stack, job_id, swept)
    except Exception as e:
        _finish(stack, job_id, run, failure_message(e))
        raise
    error = f"Could not sweep: {swept.message}" if swept.status == "failed" else None
    return {"run_id": run.id, "deleted_rows": swept.to_doc(), "run": _finish(stack, job_id, run, error)}


def _only(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        takes = f"takes only {', '.join(fields)}" if fields else "takes no fields"
        raise InvalidInput(unknown[0], f"is not a field of this action: it {takes}")


def _started(stack: Stack, job_id: str, trigger: str) -> Run:
    run = Run.new(job_id, trigger, stack.clock())
    save_run(stack, run)
    return run


def _finish(stack: Stack, job_id: str, run: Run, error: str | None) -> dict[str, Any]:
    """The run finished (failed with `error`, else succeeded), keeping what was recorded on it; the
    run as the history shows it. Never raises: the check's own answer or error goes first."""
    status = RunStatus.FAILED if error else RunStatus.SUCCEEDED
    try:
        change_run(stack, job_id, run.id, lambda r: r.finished(status, stack.clock(), error))
        doc = stack.store.get(runs_collection(job_id), run.id)
    except Exception:  # the job deleted meanwhile, or the store down
        log.warning("job %s: could not record the end of %s run %s", job_id, run.trigger, run.id, exc_info=True)
        doc = None
    return show_run(doc) if doc is not None else run.finished(status, stack.clock(), error).to_doc()


def _swept_at(stack: Stack, job_id: str, swept: Sweep) -> None:
    """A sweep on demand counts as the day's sweep (aftercare.py sweeps when the last is a day old)."""
    stack.store.transact(
        COLLECTION, job_id, lambda doc: None if doc is None else {**doc, "last_swept_at": swept.checked_at}
    )
