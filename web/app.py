"""The wizard's Flask app factory: the pages, and the JSON API under /api/ — mounted here over the
embedded stack, or passed to the `etl_api` function (HTTPS with ID tokens) in production."""

from urllib.parse import urlsplit

from flask import Flask, Response, abort, render_template, request

from etlwizard import api
from etlwizard.config import Settings
from etlwizard.logs import configure_logging
from etlwizard.payload import is_id
from etlwizard.run.deletes import NO_KEY
from etlwizard.run.engine import handle_message
from etlwizard.stack import Stack

from .client import Answer, ApiProxy

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _refused(message: str) -> Answer:
    return {"status": "error", "message": message, "details": []}, 403


def create_app(
    settings: Settings | None = None,
    stack: Stack | None = None,
    proxy: ApiProxy | None = None,
    featured_connection: str | None = None,
) -> Flask:
    """stack: serve the API over it (default: a stack from settings, or the environment); proxy, or
    settings with the etl_api function's URL: pass /api/ calls on to that function instead.
    featured_connection: the connection the wizard offers first (the demo's sample shop)."""
    settings = settings or (stack.settings if stack else Settings.from_env())
    if proxy is None and stack is None and settings.api_url:
        proxy = ApiProxy(settings.api_url, timeout=settings.query_timeout + 30)
    app = Flask(__name__)
    configure_logging(settings)  # Cloud Logging's JSON lines on Google Cloud, readable text here

    @app.before_request
    def refuse_cross_site_writes() -> Answer | None:
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
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    if proxy is None:
        api.mount(app, stack or Stack(settings, run_handler=handle_message))
    else:
        forward = proxy.forward

        api.answer_in_json(app)

        @app.route("/api/<path:path>", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
        def pass_on(path: str) -> Answer:
            body = api.parse_body(request)  # read as the API reads it: a body it refuses goes no further
            return forward(request.method, f"/api/{path}", request.args.to_dict(), body)

    @app.get("/")
    def wizard() -> str:
        return render_template(
            "wizard.html",
            page="wizard",
            dataset=settings.dataset,
            no_key=NO_KEY,
            featured_connection=featured_connection,
        )

    @app.get("/jobs")
    def jobs_page() -> str:
        return render_template("jobs.html", page="jobs", no_key=NO_KEY)

    @app.get("/jobs/<job_id>")
    def job_page(job_id: str) -> str:
        """A job's own page: a shell its script fills from the API (the wizard never reads the store)."""
        if not is_id(job_id):
            abort(404)
        return render_template("job.html", page="jobs", job_id=job_id, no_key=NO_KEY)

    @app.get("/connections")
    def connections_page() -> str:
        return render_template("connections.html", page="connections")

    return app
