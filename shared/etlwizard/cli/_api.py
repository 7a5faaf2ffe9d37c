"""The CLI's only way to the product: the JSON API over HTTP, as the wizard's browser calls it.

The configuration (which wizard, which token) is read here and nowhere else: `Config` is built once
from the command line, where Click fills in ETL_WIZARD_URL and ETL_WIZARD_TOKEN.
"""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

JSON = dict[str, Any]
DEFAULT_URL = "http://localhost:8080"  # bin/demo: the wizard over the embedded stack
TOKEN_HINT = 'pass --token "$(gcloud auth print-identity-token)" or set ETL_WIZARD_TOKEN to it'


class CliError(Exception):
    """Something the user must read: the API's message and details, or why there was no answer."""

    def __init__(self, message: str, details: list[Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.status = status

    def lines(self) -> list[str]:
        out = [f"Error: {self.message}"]
        for detail in self.details:
            if isinstance(detail, dict) and "field" in detail:
                text = f"{detail['field']}: {detail.get('problem', '')}"
            else:
                text = str(detail)
            if text != self.message:  # a 400's message is often its one detail
                out.append(f"  - {text}")
        return out


@dataclass(frozen=True)
class Config:
    url: str = DEFAULT_URL
    token: str | None = None  # None: fetched for the URL, unless the URL is this machine
    timeout: float = 120  # a create or a preview waits for the source (ETL_QUERY_TIMEOUT) and BigQuery


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def google_id_token(audience: str) -> str:
    """An ID token for `audience` from Application Default Credentials (a service account or the
    metadata server; a user's gcloud login cannot mint one this way, hence the hint)."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        token: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.GoogleAuthError as e:
        raise CliError(f"No ID token for {audience}: {e} As yourself, {TOKEN_HINT}.") from None
    return token


def segment(value: str) -> str:
    """One path segment: ids and names come from users and files."""
    return quote(value, safe="")


class ApiClient:
    def __init__(
        self,
        config: Config,
        token_source: Callable[[str], str] = google_id_token,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.token_source = token_source
        self.session = session or requests.Session()
        self._token = config.token

    def _headers(self) -> dict[str, str]:
        if self._token is None and not _is_local(self.base):
            self._token = self.token_source(self.base)
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def request(self, method: str, path: str, body: JSON | None = None, query: dict[str, str] | None = None) -> JSON:
        # Writes always send JSON, {} when there is nothing to say: the wizard refuses a state-changing
        # body that is not JSON, as a cross-site form would send (web/app.py, refuse_cross_site_writes).
        if method != "GET" and body is None:
            body = {}
        try:
            response = self.session.request(
                method, self.base + path, json=body, params=query, headers=self._headers(), timeout=self.config.timeout
            )
        except requests.ConnectionError:
            hint = (
                "start it with bin/demo, or point --url (ETL_WIZARD_URL) at a deployed one"
                if _is_local(self.base)
                else "check --url (ETL_WIZARD_URL)"
            )
            raise CliError(f"Cannot reach the wizard at {self.base}: {hint}.") from None
        except requests.Timeout:
            raise CliError(f"{self.base} did not answer within {self.config.timeout:.0f} s.") from None
        try:
            payload = response.json()
        except ValueError:
            hint = f": is the token for this URL? ({TOKEN_HINT})" if response.status_code in (401, 403) else "."
            raise CliError(
                f"{self.base} answered {response.status_code} without JSON{hint}", status=response.status_code
            ) from None
        if not isinstance(payload, dict):
            raise CliError(f"{self.base} answered with JSON that is not an object.", status=response.status_code)
        if response.status_code >= 400 or payload.get("status") == "error":
            raise CliError(
                str(payload.get("message") or f"HTTP {response.status_code}"),
                payload.get("details") or [],
                response.status_code,
            )
        return payload

    def get(self, path: str, query: dict[str, str] | None = None) -> JSON:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: JSON | None = None) -> JSON:
        return self.request("POST", path, body)

    def patch(self, path: str, body: JSON) -> JSON:
        return self.request("PATCH", path, body)

    def delete(self, path: str, body: JSON | None = None) -> JSON:
        return self.request("DELETE", path, body)

    # --- The lookups every command needs: a connection or a job by id or by name ----------------

    def connections(self) -> list[JSON]:
        found: list[JSON] = self.get("/api/connections/")["connections"]
        return found

    def jobs(self) -> list[JSON]:
        found: list[JSON] = self.get("/api/etl/jobs/")["jobs"]
        return found

    def runs(self, job_id: str) -> list[JSON]:
        found: list[JSON] = self.get(f"/api/etl/jobs/{segment(job_id)}/runs/")["runs"]
        return found

    def find_connection(self, key: str) -> JSON:
        return _pick(self.connections(), key, "connection")

    def find_job(self, key: str) -> JSON:
        return _pick(self.jobs(), key, "job")


def _pick(items: list[JSON], key: str, kind: str) -> JSON:
    """The item whose id is `key`, else the one item named `key`."""
    for item in items:
        if item["id"] == key:
            return item
    named = [item for item in items if item["name"] == key]
    if not named:
        raise CliError(f"No {kind} has the id or name {key!r}.", status=404)
    if len(named) > 1:
        ids = ", ".join(item["id"] for item in named)
        raise CliError(f"{len(named)} {kind}s are named {key!r} (ids {ids}): give the id instead.")
    return named[0]
