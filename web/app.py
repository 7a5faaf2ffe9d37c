"""The wizard's Flask app factory: the JSON API of the HTTP contract, and the pages."""

import logging

from flask import Flask, current_app, render_template, request

from etlwizard import connections, preview
from etlwizard.api import respond
from etlwizard.config import Settings
from etlwizard.stack import Stack


def create_app(settings: Settings | None = None, stack: Stack | None = None) -> Flask:
    app = Flask(__name__)
    app.extensions["etl_stack"] = stack or Stack(settings or Settings.from_env())
    app.json.sort_keys = False
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

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

    @app.errorhandler(404)
    def not_found(_):
        return {"status": "error", "message": f"No route {request.method} {request.path}", "details": []}, 404

    @app.errorhandler(405)
    def not_allowed(_):
        return {"status": "error", "message": f"{request.method} is not allowed on {request.path}", "details": []}, 405

    @app.get("/")
    def index():
        return render_template("index.html")

    return app
