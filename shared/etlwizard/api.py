"""The HTTP contract: library results and errors -> JSON bodies (`respond`), and the JSON API as a
Flask app (`create_api_app`), served in-process by the wizard in the embedded stack and as the
`etl_api` Cloud Function in production."""

import logging

from flask import Flask, current_app, request

from . import connections, jobs, preview, scheduling
from .errors import EtlError
from .stack import Stack

log = logging.getLogger(__name__)


def respond(call, *args, status: int = 200) -> tuple[dict, int]:
    """Run call(*args); a dict result becomes {"status": "success", **result}."""
    try:
        result = call(*args)
    except EtlError as e:
        log.warning("%s: %s", type(e).__name__, e.message)
        return e.to_body(), e.status
    except Exception:
        log.exception("unexpected error")
        return {"status": "error", "message": "Internal error: the server log has the details.", "details": []}, 500
    return {"status": "success", **(result or {})}, status


def create_api_app(stack: Stack) -> Flask:
    app = Flask(__name__)
    app.extensions["etl_stack"] = stack
    app.json.sort_keys = False

    def stack_():
        return current_app.extensions["etl_stack"]

    @app.post("/api/connections/")
    def create_connection():
        return respond(lambda: {"connection": connections.create_connection(stack_(), request.get_json(silent=True))},
                       status=201)

    @app.get("/api/connections/")
    def list_connections():
        return respond(lambda: {"connections": connections.list_connections(stack_())})

    @app.post("/api/connections/<connection_id>/test/")
    def test_connection(connection_id):
        return respond(connections.test_connection, stack_(), connection_id)

    @app.delete("/api/connections/<connection_id>/")
    def delete_connection(connection_id):
        return respond(connections.delete_connection, stack_(), connection_id)

    @app.get("/api/connections/<connection_id>/tables/")
    def list_tables(connection_id):
        return respond(lambda: {"tables": connections.list_tables(stack_(), connection_id)})

    @app.post("/api/connections/<connection_id>/fetch-table-preview/")
    def fetch_table_preview(connection_id):
        return respond(preview.preview_table, stack_(), connection_id, request.get_json(silent=True))

    @app.get("/api/etl/datasets/<dataset>/tables/")
    def list_destination_tables(dataset):
        return respond(lambda: {"tables": stack_().warehouse.list_tables(dataset)})

    @app.get("/api/etl/datasets/<dataset>/tables/<table>/")
    def describe_destination_table(dataset, table):
        return respond(lambda: {"table": stack_().warehouse.describe_table(dataset, table,
                                                                           request.args.get("rows", "0"))})

    @app.post("/api/etl/validate-schema-compatibility/")
    def validate_schema():
        return respond(jobs.validate_schema, stack_(), request.get_json(silent=True))

    @app.post("/api/etl/schedules/preview/")
    def preview_schedule():
        return respond(scheduling.preview_schedule, request.get_json(silent=True))

    @app.post("/api/etl/jobs/")
    def create_job():
        return respond(lambda: {"job": jobs.create_job(stack_(), request.get_json(silent=True))}, status=201)

    @app.get("/api/etl/jobs/")
    def list_jobs():
        return respond(lambda: {"jobs": jobs.list_jobs(stack_())})

    @app.get("/api/etl/jobs/<job_id>/")
    def get_job(job_id):
        return respond(lambda: {"job": jobs.read_job(stack_(), job_id)})

    @app.get("/api/etl/jobs/<job_id>/runs/")
    def list_runs(job_id):
        return respond(lambda: {"runs": jobs.list_runs(stack_(), job_id)})

    @app.patch("/api/etl/jobs/<job_id>/")
    def update_job(job_id):
        return respond(lambda: {"job": jobs.update_job(stack_(), job_id, request.get_json(silent=True))})

    @app.delete("/api/etl/jobs/<job_id>/")
    def delete_job(job_id):
        return respond(jobs.delete_job, stack_(), job_id, request.get_json(silent=True))

    @app.post("/api/etl/jobs/<job_id>/run/")
    def run_job(job_id):
        return respond(jobs.run_now, stack_(), job_id, status=202)

    @app.post("/api/etl/jobs/<job_id>/pause/")
    def pause_job(job_id):
        return respond(lambda: {"job": jobs.pause_job(stack_(), job_id)})

    @app.post("/api/etl/jobs/<job_id>/resume/")
    def resume_job(job_id):
        return respond(lambda: {"job": jobs.resume_job(stack_(), job_id)})

    @app.post("/api/etl/jobs/<job_id>/reconnect/")
    def reconnect_job(job_id):
        return respond(lambda: {"job": jobs.reconnect_job(stack_(), job_id, request.get_json(silent=True))})

    @app.errorhandler(404)
    def not_found(_):
        return {"status": "error", "message": f"No route {request.method} {request.path}", "details": []}, 404

    @app.errorhandler(405)
    def not_allowed(_):
        return {"status": "error", "message": f"{request.method} is not allowed on {request.path}", "details": []}, 405

    return app
