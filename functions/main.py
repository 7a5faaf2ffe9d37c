"""Cloud Functions entry points: parse the request or event, call one library function, answer.

Each is deployed with its own --entry-point; all share the etlwizard library packaged beside this file.
"""

import base64
import io
import logging
from functools import cache

import functions_framework

from etlwizard import jobs, preview, runner
from etlwizard.api import create_api_app, respond
from etlwizard.config import Settings
from etlwizard.errors import EtlError
from etlwizard.model import require_object, require_text
from etlwizard.stack import Stack

log = logging.getLogger(__name__)
_WRONG_METHOD = {"status": "error", "message": "Use POST with a JSON body.", "details": []}, 405


@cache
def _stack() -> Stack:
    return Stack(Settings.from_env())


@functions_framework.http
def preview_table(request):
    """POST {connection_id, schema_name, table_name} -> the table's columns, sample rows and counts."""
    if request.method != "POST":
        return _WRONG_METHOD

    def call():
        body = require_object(request.get_json(silent=True))
        return preview.preview_table(_stack(), require_text(body, "connection_id", max_length=64), body)

    return respond(call)


@functions_framework.http
def validate_schema(request):
    """POST {source_columns, destination_table, primary_key?, timestamp_column?} -> the compatibility report."""
    if request.method != "POST":
        return _WRONG_METHOD
    return respond(jobs.validate_schema, _stack(), request.get_json(silent=True))


@functions_framework.http
def create_job(request):
    """POST a job (DESIGN section 5) -> the stored job, its destination table made or checked."""
    if request.method != "POST":
        return _WRONG_METHOD
    return respond(lambda: {"job": jobs.create_job(_stack(), request.get_json(silent=True))}, status=201)


@cache
def _api_app():
    return create_api_app(_stack())


@functions_framework.http
def etl_api(request):
    """The rest of the JSON API (connections, tables, jobs, runs, actions) for the wizard."""
    app = _api_app()
    data = request.get_data()  # the body, read once: the API app reads it from its own stream
    environ = {**request.environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
    with app.request_context(environ):
        return app.full_dispatch_request()


@functions_framework.cloud_event
def run_job(cloud_event):
    """A Pub/Sub run message. A transient failure raises, so Pub/Sub redelivers; anything else is
    recorded in the run history and acknowledged."""
    data = base64.b64decode(cloud_event.data["message"]["data"])
    try:
        runner.handle_message(_stack(), data)
    except EtlError as e:
        if e.transient:
            raise
        log.warning("run message %s acknowledged after a terminal error: %s", data[:200], e.message)
