"""A job's health at a glance: what the jobs page's Health column says, and what its filter picks.

Worked out from the job document and its runs (newest first), read as the stored documents, so the
fields other parts add to a run (`verification`) count whether or not `Run` knows them yet:

- paused:   the job is paused (whatever its runs say: nobody expects it to load);
- stuck:    the last trigger was skipped while one run has held the lease for longer than
            Settings.lease_seconds, and that run holds it still;
- failing:  the last run that ended failed (or was abandoned by a dead worker); `since` is the first
            failure of the current streak. Skipped and interrupted runs (a process shut down: Pub/Sub
            redelivers) neither start nor end a streak, and a run in progress does not end it;
- mismatch: the newest verification that could compare (matched or mismatched; not one that failed
            or was skipped) found mismatched buckets, and no repair of them since matched (a
            verification's `repaired` result, when it has one, is its final word);
- ok:       none of these (a job that never ran too).

Verification and the deleted-row sweep on demand (on_demand.py) are runs of their own in the history,
with the triggers in CHECK_TRIGGERS. They load nothing, so they are not load runs: they neither end
nor start a failing streak (a verification that could not reach the source says so in its result,
and a succeeded one does not mean the loads work again), do not hide a stuck job's skipped triggers,
and are not the job's last run (`loads`). Their verification counts like any other: the newest
verdict is the job's, whichever run holds it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from .job import Job, JobState
from .run.state import RunStatus
from .store import Document


class Health(StrEnum):
    """In the order a sort by health shows them: the ones needing a person first."""

    STUCK = "stuck"
    FAILING = "failing"
    MISMATCH = "mismatch"
    OK = "ok"
    PAUSED = "paused"

    @property
    def rank(self) -> int:
        return list(Health).index(self)


_FAILED = {RunStatus.FAILED.value, RunStatus.ABANDONED.value}
_ENDS_A_STREAK = {RunStatus.SUCCEEDED.value}
_VERDICTS = {"matched", "mismatched"}  # a verification that failed or was skipped says neither
CHECK_TRIGGERS = frozenset({"verify", "sweep"})  # runs that check a job's rows and load none


@dataclass(frozen=True)
class JobHealth:
    status: Health
    since: datetime | None = None  # failing: the streak's first failure; stuck: when the lease was taken
    reason: str | None = None  # one sentence for a person

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"status": self.status.value}
        if self.since is not None:
            shown["since"] = self.since.isoformat()
        if self.reason is not None:
            shown["reason"] = self.reason
        return shown


def assess(job: Job, runs: Sequence[Document], lease_seconds: int) -> JobHealth:
    """The job's health from its runs' documents, newest first (as records.list_runs orders them)."""
    if job.state is JobState.PAUSED:
        return JobHealth(Health.PAUSED, reason="Paused: no scheduled runs.")
    loaded = loads(runs)
    return _stuck(job, loaded, lease_seconds) or _failing(loaded) or _mismatch(runs) or JobHealth(Health.OK)


def loads(runs: Sequence[Document]) -> list[Document]:
    """The runs that load (or tried to, or were skipped trying), in their order: not the checks."""
    return [r for r in runs if r.get("trigger") not in CHECK_TRIGGERS]


def newest_first(runs: Sequence[Document]) -> list[Document]:
    return sorted(runs, key=started_at, reverse=True)


def started_at(run: Document) -> datetime:
    return _when(run["started_at"])


def _when(iso: str) -> datetime:
    when = datetime.fromisoformat(iso)
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _stuck(job: Job, runs: Sequence[Document], lease_seconds: int) -> JobHealth | None:
    if not runs or runs[0]["status"] != RunStatus.SKIPPED.value or job.lease is None:
        return None
    holder = next((r for r in runs if r["id"] == job.lease.run_id), None)
    if holder is not None:
        held_since = _when(holder["started_at"])
    else:  # the holder's document is gone: it held the lease at least since the first skip of the streak
        streak = _leading(runs, lambda r: r["status"] == RunStatus.SKIPPED.value)
        held_since = _when(streak[-1]["started_at"])
    skipped_at = _when(runs[0]["started_at"])
    if skipped_at - held_since <= timedelta(seconds=lease_seconds):
        return None
    return JobHealth(
        Health.STUCK,
        held_since,
        f"Triggers are skipped: run {job.lease.run_id} has held the job since {held_since.isoformat()}, "
        f"longer than a lease ({lease_seconds} s).",
    )


def _failing(runs: Sequence[Document]) -> JobHealth | None:
    ended = [r for r in runs if r["status"] in _FAILED | _ENDS_A_STREAK]
    streak = _leading(ended, lambda r: r["status"] in _FAILED)
    if not streak:
        return None
    latest, first = streak[0], streak[-1]
    count = f"{len(streak)} runs have" if len(streak) > 1 else "The last run has"
    return JobHealth(
        Health.FAILING,
        _when(first["started_at"]),
        f"{count} failed: {latest.get('error') or latest['status']}",
    )


def _mismatch(runs: Sequence[Document]) -> JobHealth | None:
    verdicts = [(run, found) for run in runs if (found := verdict(run)) is not None]
    if not verdicts:
        return None
    latest, result = max(verdicts, key=lambda pair: _verified_at(pair[0], pair[1]))
    if result["status"] != "mismatched":
        return None
    mismatched = result.get("mismatched")
    buckets = result.get("buckets")
    count = len(mismatched) if isinstance(mismatched, list) else None
    of = f" of {buckets}" if isinstance(buckets, int) else ""
    what = f"{count}{of} buckets differ" if count is not None else "buckets differ"
    return JobHealth(
        Health.MISMATCH,
        _verified_at(latest, result),
        f"The last verification (run {latest['id']}) found the destination differs from the source: {what}.",
    )


def verdict(run: Document) -> dict[str, Any] | None:
    """A run's last verification that compared (matched or mismatched): the repair's, when the run
    repaired what it found, else its own; None when it has none."""
    found = run.get("verification")
    if not isinstance(found, dict):
        return None
    repaired = found.get("repaired")
    if isinstance(repaired, dict) and repaired.get("status") in _VERDICTS:
        return repaired
    return found if found.get("status") in _VERDICTS else None


def _verified_at(run: Document, result: dict[str, Any]) -> datetime:
    checked = result.get("checked_at")
    try:
        return _when(checked) if isinstance(checked, str) else _when(run["started_at"])
    except ValueError:
        return _when(run["started_at"])


def _leading(runs: Sequence[Document], matches: Callable[[Document], bool]) -> list[Document]:
    """The runs from the newest on while `matches` holds."""
    streak: list[Document] = []
    for run in runs:
        if not matches(run):
            break
        streak.append(run)
    return streak
