"""Runs in the job store: jobs/<job_id>/runs/<run_id>, read and written as `Run`."""

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from ..errors import EtlError
from ..job import runs_collection
from ..stack import Stack
from .state import Run


def save_run(stack: Stack, run: Run) -> None:
    stack.store.put(runs_collection(run.job_id), run.id, run.to_doc())


def get_run(stack: Stack, job_id: str, run_id: str) -> Run | None:
    doc = stack.store.get(runs_collection(job_id), run_id)
    return None if doc is None else Run.from_doc(doc)


def change_run(stack: Stack, job_id: str, run_id: str, change: Callable[[Run], Run]) -> Run:
    """Change a run atomically (chunks of one run finish concurrently, alerts are recorded on it).
    Fields other parts of the product add to the document, which `Run` does not read (a
    verification's result, a sweep's deleted rows), stay as they are."""
    changed = stack.store.transact(
        runs_collection(job_id),
        run_id,
        lambda doc: None if doc is None else {**_extras(doc), **change(Run.from_doc(doc)).to_doc()},
    )
    if changed is None:
        raise EtlError(f"run {run_id} of job {job_id} is gone from the job store")
    return Run.from_doc(changed)


def annotate_run(stack: Stack, job_id: str, run_id: str, **extras: Any) -> None:
    """Fields of other parts of the product on a run's document (aftercare.py's verification and
    deleted rows), set atomically beside what the run wrote."""
    stack.store.transact(runs_collection(job_id), run_id, lambda doc: None if doc is None else {**doc, **extras})


_RUN_FIELDS = frozenset(f.name for f in fields(Run))  # Run.to_doc's keys


def _extras(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _RUN_FIELDS}


def list_runs(stack: Stack, job_id: str) -> list[Run]:
    """Newest first."""
    runs = [Run.from_doc(doc) for doc in stack.store.list(runs_collection(job_id))]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)


def failure_message(error: Exception) -> str:
    """What the run history says of a failure: the error's own sentence, or a pointer to the log."""
    return error.message if isinstance(error, EtlError) else "Internal error: see the log."
