"""What a run costs in BigQuery: every job it starts (the loads of staging, the MERGE or the copy that
commits, DDL, the checks after it: verification and the deleted-row sweep) with the statistics the
API reports for it, summed on the run's document as `bigquery` (state.BigQueryUse).

A call of the run engine (a whole run, or one chunk of a fanned-out run, each possibly in its own
process) records the jobs it starts in a `warehouse.recording_jobs()` block and adds them to the
run's document when it ends, however it ends: a failed run's jobs were billed too. The addition is
one store transaction, so chunks finishing together each add their own.
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timezone
from typing import Any

from ..stack import Stack
from ..warehouse import JobStats, recording_jobs
from .records import change_run
from .state import BigQueryUse, Run

log = logging.getLogger(__name__)


class Recording:
    """The BigQuery jobs one call of the run engine starts, for run `run_id` (see recording())."""

    def __init__(self, stack: Stack, job_id: str, run_id: str, jobs: list[JobStats]):
        self.stack, self.job_id, self.run_id, self._jobs = stack, job_id, run_id, jobs

    def done(self, run: Run | None) -> Run | None:
        """Add the jobs recorded so far to the run's document; `run` (the call's result) comes back
        with them."""
        jobs, self._jobs[:] = list(self._jobs), []
        saved = _add(self.stack, self.job_id, self.run_id, jobs)
        if run is not None and saved is not None and run.id == self.run_id:
            return replace(run, bigquery=saved)
        return run


@contextmanager
def recording(stack: Stack, job_id: str, run_id: str) -> Iterator[Recording]:
    """Record the BigQuery jobs started inside on run `run_id`'s document: at `done()`, and at the end
    of the block whatever was not added yet (a run that raised was billed too). Recording never fails
    the run: a failure to save is logged."""
    with recording_jobs() as jobs:
        recorder = Recording(stack, job_id, run_id, jobs)
        try:
            yield recorder
        finally:
            recorder.done(None)


def _add(stack: Stack, job_id: str, run_id: str, jobs: list[JobStats]) -> BigQueryUse | None:
    if not jobs:
        return None
    try:
        return change_run(stack, job_id, run_id, lambda r: replace(r, bigquery=r.bigquery.plus(jobs))).bigquery
    except Exception:
        log.warning("job %s run %s: its %d BigQuery jobs were not recorded", job_id, run_id, len(jobs), exc_info=True)
        return None


def by_month(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """A job's BigQuery use per calendar month (UTC, of the runs' start), newest first: runs, jobs and
    the sums of bytes processed, bytes billed and slot milliseconds (None: no job reported it)."""
    months: dict[str, tuple[int, BigQueryUse]] = {}
    for run in runs:
        started = run.started_at.astimezone(timezone.utc) if run.started_at.tzinfo else run.started_at
        month = started.strftime("%Y-%m")
        count, use = months.get(month, (0, BigQueryUse()))
        # only the sums: the per-job list is the runs' own
        total = BigQueryUse(
            use.jobs + run.bigquery.jobs,
            _plus(use.bytes_processed, run.bigquery.bytes_processed),
            _plus(use.bytes_billed, run.bigquery.bytes_billed),
            _plus(use.slot_ms, run.bigquery.slot_ms),
        )
        months[month] = (count + 1, total)
    return [
        {
            "month": month,
            "runs": count,
            "jobs": use.jobs,
            "bytes_processed": use.bytes_processed,
            "bytes_billed": use.bytes_billed,
            "slot_ms": use.slot_ms,
        }
        for month, (count, use) in sorted(months.items(), reverse=True)
    ]


def _plus(a: int | None, b: int | None) -> int | None:
    return a if b is None else b if a is None else a + b
