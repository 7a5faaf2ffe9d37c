"""Cloud Functions entry points: parse the request or event, call one library function, answer.

Each is deployed with its own --entry-point; all share the etlwizard library. `etl_api` serves the
whole JSON API (the wizard's backend); preview_table, validate_schema and create_job are the design
card's single-purpose functions over the same library functions.
"""

import base64
import io
import logging
import signal
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from etlwizard import job_checks, jobs, preview
from etlwizard.api import Answer, create_api_app, error_response, ok, parse_body
from etlwizard.config import Settings
from etlwizard.errors import EtlError
from etlwizard.logs import configure_logging
from etlwizard.payload import require_id, require_object
from etlwizard.run.engine import handle_message
from etlwizard.stack import Stack

log = logging.getLogger(__name__)
_WRONG_METHOD = {"status": "error", "message": "Use POST with a JSON body.", "details": []}, 405


@cache
def _stack() -> Stack:
    settings = Settings.from_env()
    configure_logging(settings)  # on Google Cloud: one JSON object a line, which Cloud Logging reads
    stack = Stack(settings, run_handler=handle_message)
    _stop_with_the_server(stack)
    return stack


def _stop_with_the_server(stack: Stack) -> None:
    """Set stack.stopping when the server shuts this process down, so a run in flight stops within
    seconds (recorded interrupted, its job freed) before Cloud Run's SIGKILL. As deployed, gunicorn
    serves the functions: it takes SIGTERM in the worker's main thread and clears the worker's
    `alive`; its handler is that worker's bound method, which is how a thread here can watch it."""
    worker = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if not hasattr(worker, "alive"):
        return  # another server (a test client): nothing to watch

    def watch() -> None:
        while worker.alive:
            time.sleep(0.5)
        stack.stopping.set()

    threading.Thread(target=watch, name="etl-shutdown", daemon=True).start()


def _answer(request: flask.Request, call: Callable[[Any], Answer]) -> Answer:
    """POST only; the JSON body, read as the API reads it, to `call`; an error as the API writes it."""
    if request.method != "POST":
        return _WRONG_METHOD
    try:
        return call(parse_body(request))
    except Exception as e:
        return error_response(e)


@functions_framework.http
def preview_table(request: flask.Request) -> Answer:
    """POST {connection_id, schema_name, table_name} -> the table's columns, sample rows and counts."""

    def call(body: Any) -> Answer:
        connection_id = require_id(require_object(body), "connection_id")
        return ok(**preview.preview_table(_stack(), connection_id, body))

    return _answer(request, call)


@functions_framework.http
def validate_schema(request: flask.Request) -> Answer:
    """POST {source_columns, destination_table, primary_key?, timestamp_column?} -> the compatibility report."""
    return _answer(request, lambda body: ok(**job_checks.validate_schema(_stack(), body)))


@functions_framework.http
def create_job(request: flask.Request) -> Answer:
    """POST a job (README, "API") -> the stored job, its destination table made or checked."""
    return _answer(request, lambda body: ok(201, job=jobs.create_job(_stack(), body)))


@cache
def _api_app() -> flask.Flask:
    return create_api_app(_stack())


@functions_framework.http
def etl_api(request: flask.Request) -> flask.Response:
    """The whole JSON API (connections, tables, jobs, runs, actions) for the wizard."""
    app = _api_app()
    data = request.get_data()  # the body, read once: the API app reads it from its own stream
    environ = {**request.environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
    with app.request_context(environ):
        return app.full_dispatch_request()


@functions_framework.cloud_event
def run_job(cloud_event: CloudEvent) -> None:
    """A Pub/Sub run message. A transient failure raises, so Pub/Sub redelivers; anything else is
    recorded in the run history and acknowledged."""
    data = base64.b64decode(cloud_event.data["message"]["data"])
    try:
        handle_message(_stack(), data)
    except EtlError as e:
        if e.transient:
            raise
        log.warning("run message %s acknowledged after a terminal error: %s", data[:200], e.message)
