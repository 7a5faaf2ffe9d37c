"""The wizard's Flask app factory: the pages, and /api/ calls passed to the functions through the
client (in-process in the embedded stack, HTTPS with ID tokens in production)."""

import logging
from urllib.parse import urlsplit

from flask import Flask, render_template, request

from etlwizard.api import create_api_app
from etlwizard.config import Settings
from etlwizard.stack import Stack

from .client import FunctionsClient, HttpTransport, InProcessTransport


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _refused(message: str):
    return {"status": "error", "message": message, "details": []}, 403


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

    @app.before_request
    def refuse_cross_site_writes():
        """CSRF: a state-changing call must carry JSON (a cross-site form cannot), and a browser's
        Origin, when sent, must be this site. curl and other clients sending JSON keep working."""
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.path.startswith("/api/"):
            return None
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:  # TLS ends before Cloud Run: compare hosts
            return _refused(f"Cross-site request refused: origin {origin} is not this site.")
        if request.get_data() and not request.is_json:
            return _refused("Send the request body as JSON (Content-Type: application/json).")
        return None

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

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
