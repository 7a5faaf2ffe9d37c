"""Log lines: on Google Cloud one JSON object a line, in Cloud Logging's structured format; locally
readable text (README, "Logs").

The entry points call `configure_logging` once. The run engine says which run a line belongs to
with `run_context` (job_id, run_id, trigger: the entry's labels, so a run's lines are one filter
away), and a line that reports numbers passes them as `fields` (rows, bytes, duration_seconds,
and `event`, which the log-based metric in infra/ counts: `run_failed`). Text lines leave both out.
"""

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import IO, Any

from .config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The `event` of the one line a failed run logs: infra/'s log-based metric counts these lines.
FAILED_RUN_EVENT = "run_failed"

# The labels of the lines logged in this context (this thread, or this task): set by run_context.
_labels: ContextVar[dict[str, str]] = ContextVar("etl_log_labels", default={})  # noqa: B039 -- never mutated


@contextmanager
def run_context(**labels: object) -> Iterator[None]:
    """Lines logged inside carry these labels (None values left out), besides any set outside.
    Threads a run starts do not inherit them: contextvars stay with their thread."""
    token = _labels.set({**_labels.get(), **{k: str(v) for k, v in labels.items() if v is not None}})
    try:
        yield
    finally:
        _labels.reset(token)


def fields(**values: object) -> dict[str, Any]:
    """`extra` for a line that reports numbers or an event: fields of its jsonPayload (None left out)."""
    return {"json_fields": {k: v for k, v in values.items() if v is not None}}


def _with_run_labels(record: logging.LogRecord) -> None:
    """The run context's labels on the record, where the structured handler looks for labels (a
    line's own `extra={"labels": ...}` wins). Cloud Logging wants labels as strings: they are."""
    context = _labels.get()
    if context:
        own = getattr(record, "labels", None)
        record.labels = {**context, **({str(k): str(v) for k, v in own.items()} if own else {})}


@cache
def _structured_handler_class() -> Callable[..., logging.Handler]:
    """google-cloud-logging's StructuredLogHandler, labelling each line with its run. Imported when
    first needed: it takes a second to import, which only the JSON format should pay for. Typed as a
    plain callable: the library leaves the handler's constructor unannotated."""
    from google.cloud.logging.handlers import StructuredLogHandler

    class RunLogHandler(StructuredLogHandler):
        def handle(self, record: logging.LogRecord) -> bool:
            _with_run_labels(record)
            return bool(super().handle(record))

    # its first line (the library's version) goes to the handler itself, not through root again
    logging.getLogger(StructuredLogHandler.__module__).propagate = False
    return RunLogHandler


# Marks the handler configure_logging installed, so a second call replaces it instead of adding one.
_OURS = "_etl_wizard_handler"


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send the process's log lines to `stream` (default: stdout for JSON, which Cloud Run and Cloud
    Functions read as structured entries; stderr for text), at INFO and above. A text handler on
    stdout or stderr set up before (logging.basicConfig, functions-framework's) is replaced, so no
    line is written twice; handlers writing elsewhere (a test's capture) stay."""
    root = logging.getLogger()
    handler: logging.Handler
    if settings.logs_as_json:
        handler = _structured_handler_class()(stream=stream or sys.stdout, project_id=settings.project)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    setattr(handler, _OURS, True)
    for old in list(root.handlers):
        to_console = isinstance(old, logging.StreamHandler) and old.stream in (sys.stdout, sys.stderr)
        if getattr(old, _OURS, False) or (to_console and type(old) is logging.StreamHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler
