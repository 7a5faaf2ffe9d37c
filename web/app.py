"""The wizard's Flask app factory: the pages, and /api/ calls passed to the functions through the
client (in-process in the embedded stack, HTTPS with ID tokens in production)."""

import logging

from flask import Flask, render_template, request

from etlwizard.api import create_api_app
from etlwizard.config import Settings
from etlwizard.stack import Stack

from .client import FunctionsClient, HttpTransport, InProcessTransport


def create_app(settings: Settings | None = None, stack: Stack | None = None, transport=None) -> Flask:
    settings = settings or (stack.settings if stack else Settings.from_env())
    if transport is None:
        if settings.function_urls and stack is None:
            transport = HttpTransport(settings.function_urls, timeout=settings.query_timeout + 30)
        else:
            transport = InProcessTransport(create_api_app(stack or Stack(settings)))
    client = FunctionsClient(transport)
    app = Flask(__name__)
    app.extensions["etl_client"] = client
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @app.route("/api/<path:path>", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
    def api(path):
        body = request.get_json(silent=True) if request.get_data() else None
        payload, status = client.forward(request.method, f"/api/{path}", request.args.to_dict(), body)
        return payload, status

    @app.get("/")
    def wizard():
        return render_template("wizard.html", page="wizard", dataset=settings.dataset)

    @app.get("/jobs")
    def jobs_page():
        return render_template("jobs.html", page="jobs")

    @app.get("/connections")
    def connections_page():
        return render_template("connections.html", page="connections")

    @app.errorhandler(404)
    def not_found(_):
        return {"status": "error", "message": f"No route {request.method} {request.path}", "details": []}, 404

    return app
