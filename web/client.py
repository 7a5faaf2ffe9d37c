"""How the wizard reaches the functions: one client, two transports.

- InProcessTransport (embedded stack): the API app's handlers, called in this process.
- HttpTransport (production): HTTPS to each function's URL with a Google ID token whose audience is
  that URL; Cloud Functions' IAM checks it, so nothing here trusts a header a browser can set.

FunctionsClient maps an /api/ route to the function that serves it: the table preview, the
compatibility check and job creation go to their own functions, everything else to `etl_api`.
"""

import re

import requests

PREVIEW = re.compile(r"^/api/connections/(?P<connection_id>[^/]+)/fetch-table-preview/$")
ROUTES = [  # (method, pattern, function)
    ("POST", PREVIEW, "preview_table"),
    ("POST", re.compile(r"^/api/etl/validate-schema-compatibility/$"), "validate_schema"),
    ("POST", re.compile(r"^/api/etl/jobs/$"), "create_job"),
]


class FunctionsClient:
    def __init__(self, transport):
        self.transport = transport

    def forward(self, method: str, path: str, query: dict, body) -> tuple[dict, int]:
        for route_method, pattern, function in ROUTES:
            match = pattern.match(path)
            if match and method == route_method:
                if function == "preview_table":  # the function takes the connection in its body
                    body = {**(body if isinstance(body, dict) else {}), **match.groupdict()}
                return self.transport.call(function, "POST", path, {}, body)
        return self.transport.call("etl_api", method, path, query, body)


class InProcessTransport:
    def __init__(self, api_app):
        self.app = api_app

    def call(self, function: str, method: str, path: str, query: dict, body) -> tuple[dict, int]:
        if function == "preview_table":
            body = {k: v for k, v in body.items() if k != "connection_id"}
        options = {"method": method, "query_string": query}
        if body is not None:
            options["json"] = body
        with self.app.test_request_context(path, **options):
            response = self.app.full_dispatch_request()
        return response.get_json(), response.status_code


class HttpTransport:
    """urls: function name -> its HTTPS URL (preview_table, validate_schema, create_job, etl_api)."""

    def __init__(self, urls: dict, token_source=None, session=None, timeout: float = 90):
        self.urls = urls
        self.token_source = token_source or google_id_token
        self.session = session or requests.Session()
        self.timeout = timeout

    def call(self, function: str, method: str, path: str, query: dict, body) -> tuple[dict, int]:
        base = self.urls[function]
        url = base.rstrip("/") + path if function == "etl_api" else base
        headers = {"Authorization": f"Bearer {self.token_source(base)}"}
        try:
            response = self.session.request(method, url, params=query, json=body, headers=headers,
                                            timeout=self.timeout)
        except requests.RequestException:
            return _error(f"The {function} function could not be reached.", 502)
        try:
            return response.json(), response.status_code
        except ValueError:
            return _error(f"The {function} function answered {response.status_code} without JSON.", 502)


def google_id_token(audience: str) -> str:
    """An ID token for the function at `audience`, from the runtime's service account."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)


def _error(message: str, status: int) -> tuple[dict, int]:
    return {"status": "error", "message": message, "details": []}, status
