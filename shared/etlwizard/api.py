"""The JSON API (README, "API"): one Flask blueprint, the only route table between a request and the
library. The wizard mounts it in the embedded stack; the `etl_api` Cloud Function serves it whole
(create_api_app); the preview, validate and create-job functions call the same library functions.

Every answer is JSON: {"status": "success", ...} or, from `error_response`, {"status": "error",
"message", "details"} with the error's HTTP status.
"""

import json
import logging
from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import connections, job_checks, job_listing, jobs, on_demand, preview, scheduling
from .errors import EtlError, InvalidInput, NotFound, TooLarge
from .payload import is_id
from .stack import Stack

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
Answer = tuple[dict[str, Any], int]

# Request bodies: a job with thousands of columns is a few hundred KB; nothing needs more, and the
# JSON parser recurses once per level, so a 10,000-deep body would exhaust Python's stack.
MAX_BODY_BYTES = 1024 * 1024
MAX_BODY_DEPTH = 32
TOO_LARGE = f"The request body is larger than the limit of {MAX_BODY_BYTES} bytes (1 MiB)."


def ok(status: int = 200, **payload: Any) -> Answer:
    return {"status": "success", **payload}, status


def error_response(error: Exception) -> Answer:
    """The one writer of an error body: an EtlError says its own status and message; anything
    else is a bug, logged with its trace and answered without it."""
    if isinstance(error, EtlError):
        log.warning("%s: %s", type(error).__name__, error.message)
        return {"status": "error", "message": error.message, "details": error.details}, error.status
    if isinstance(error, HTTPException):  # Werkzeug's: no such route, method not allowed, ...
        message = {
            404: f"No route {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: TOO_LARGE,
        }.get(error.code or 0, error.description)
        return {"status": "error", "message": message or error.name, "details": []}, error.code or 500
    log.exception("unexpected error", exc_info=error)
    return {"status": "error", "message": "Internal error: the server log has the details.", "details": []}, 500


def stack() -> Stack:
    found: Stack = current_app.extensions["etl_stack"]
    return found


def body() -> object:
    """The request's JSON object, as check_request read it (None: the request has none)."""
    return g.get("etl_body")


@bp.before_request
def check_request() -> None:
    """Before any route runs (and after the wizard's cross-site check): a job or connection id in
    the path has the ids' one format, else it names nothing (and never reaches the job store, where
    Firestore refuses some names outright); the body is read once (past MAX_BODY_BYTES Flask
    answers 413), and a route that takes no fields still refuses one that is not a JSON object."""
    for name in ("job_id", "connection_id"):
        value = (request.view_args or {}).get(name)
        if value is not None and not is_id(value):
            shown = value[:64] if value[:64].isprintable() else repr(value[:64])  # no line breaks in logs
            raise NotFound(f"{name.removesuffix('_id')} {shown} does not exist")
    g.etl_body = parse_body(request)


def parse_body(req: Request) -> dict[str, Any] | None:
    """A request's body: None if it has none, else a JSON object sent as JSON, nested at most
    MAX_BODY_DEPTH deep; anything else raises InvalidInput naming `body`. The functions' entry
    points can read their bodies with it too."""
    data = req.get_data(cache=True)
    if not data:
        return None
    if len(data) > MAX_BODY_BYTES:  # where no server refused it before (MAX_CONTENT_LENGTH)
        raise TooLarge(TOO_LARGE)
    if not req.is_json:
        raise InvalidInput("body", "must be JSON, sent with Content-Type: application/json")
    too_deep = InvalidInput("body", f"nests objects and lists more than {MAX_BODY_DEPTH} levels deep")
    try:
        value = json.loads(data)
    except RecursionError:  # some thousand levels: the parser ran out of stack
        raise too_deep from None
    except ValueError:  # not JSON, not UTF-8, or an integer of more digits than Python converts
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("body", "must be a JSON object")
    if _depth(value) > MAX_BODY_DEPTH:
        raise too_deep
    return value


def _depth(value: object) -> int:
    """How deep lists and objects nest in a parsed body, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


@bp.post("/connections/")
def create_connection() -> Answer:
    return ok(201, connection=connections.create_connection(stack(), body()))


@bp.get("/connections/")
def list_connections() -> Answer:
    return ok(connections=connections.list_connections(stack()))


@bp.post("/connections/<connection_id>/test/")
def test_connection(connection_id: str) -> Answer:
    return ok(**connections.test_connection(stack(), connection_id))


@bp.post("/connections/<connection_id>/host-key/")
def trust_host_key(connection_id: str) -> Answer:
    return ok(connection=connections.trust_host_key(stack(), connection_id, body()))


@bp.delete("/connections/<connection_id>/")
def delete_connection(connection_id: str) -> Answer:
    connections.delete_connection(stack(), connection_id)
    return ok()


@bp.get("/connections/<connection_id>/tables/")
def list_tables(connection_id: str) -> Answer:
    return ok(tables=connections.list_tables(stack(), connection_id))


@bp.post("/connections/<connection_id>/fetch-table-preview/")
def fetch_table_preview(connection_id: str) -> Answer:
    return ok(**preview.preview_table(stack(), connection_id, body()))


@bp.get("/etl/datasets/<dataset>/tables/")
def list_destination_tables(dataset: str) -> Answer:
    return ok(tables=stack().warehouse.list_tables(dataset))


@bp.get("/etl/datasets/<dataset>/tables/<table>/")
def describe_destination_table(dataset: str, table: str) -> Answer:
    return ok(table=stack().warehouse.describe_table(dataset, table, request.args.get("rows", "0")))


@bp.post("/etl/validate-schema-compatibility/")
def validate_schema() -> Answer:
    return ok(**job_checks.validate_schema(stack(), body()))


@bp.post("/etl/schedules/preview/")
def preview_schedule() -> Answer:
    return ok(**scheduling.preview_schedule(body()))


@bp.post("/etl/jobs/")
def create_job() -> Answer:
    return ok(201, job=jobs.create_job(stack(), body()))


@bp.get("/etl/jobs/")
def list_jobs() -> Answer:
    return ok(**job_listing.list_jobs(stack(), request.args))


@bp.get("/etl/jobs/<job_id>/")
def read_job(job_id: str) -> Answer:
    return ok(job=jobs.read_job(stack(), job_id))


@bp.get("/etl/jobs/<job_id>/runs/")
def list_runs(job_id: str) -> Answer:
    return ok(runs=jobs.job_runs(stack(), job_id))


@bp.patch("/etl/jobs/<job_id>/")
def update_job(job_id: str) -> Answer:
    return ok(job=jobs.update_job(stack(), job_id, body()))


@bp.delete("/etl/jobs/<job_id>/")
def delete_job(job_id: str) -> Answer:
    return ok(**jobs.delete_job(stack(), job_id, body()))


@bp.post("/etl/jobs/<job_id>/run/")
def run_job(job_id: str) -> Answer:
    return ok(202, **jobs.run_now(stack(), job_id))


@bp.post("/etl/jobs/<job_id>/pause/")
def pause_job(job_id: str) -> Answer:
    return ok(job=jobs.pause_job(stack(), job_id))


@bp.post("/etl/jobs/<job_id>/resume/")
def resume_job(job_id: str) -> Answer:
    return ok(job=jobs.resume_job(stack(), job_id))


@bp.post("/etl/jobs/<job_id>/reconnect/")
def reconnect_job(job_id: str) -> Answer:
    return ok(job=jobs.reconnect_job(stack(), job_id, body()))


@bp.post("/etl/jobs/<job_id>/verify/")
def verify_job(job_id: str) -> Answer:
    return ok(**on_demand.verify_job(stack(), job_id, body()))


@bp.post("/etl/jobs/<job_id>/sweep/")
def sweep_job(job_id: str) -> Answer:
    return ok(**on_demand.sweep_job(stack(), job_id, body()))


def mount(app: Flask, stack: Stack) -> None:
    """Serve the API from `app` over `stack`: its routes, and JSON for every error under /api/."""
    app.extensions["etl_stack"] = stack
    app.json.sort_keys = False  # type: ignore[attr-defined]  # answers keep the library's field order
    app.register_blueprint(bp)
    answer_in_json(app)


def answer_in_json(app: Flask) -> None:
    """The API's limits and error bodies on an app serving /api/ (itself, or passing it on)."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(Exception)
    def answer_error(error: Exception) -> Answer | Response | HTTPException:
        if isinstance(error, HTTPException) and not request.path.startswith("/api/"):
            return error  # the wizard's pages keep Flask's own answers
        return error_response(error)


def create_api_app(stack: Stack) -> Flask:
    """The API alone, as the etl_api function serves it."""
    app = Flask(__name__)
    mount(app, stack)
    return app
