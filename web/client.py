"""How the wizard in production reaches its backend: the `etl_api` function, over HTTPS with a Google
ID token whose audience is that function's URL. Cloud Functions' IAM checks the token, so nothing
here trusts a header a browser can set. (In the embedded stack the wizard mounts the API itself.)"""

from collections.abc import Callable
from typing import Any

import requests

Answer = tuple[dict[str, Any], int]


class ApiProxy:
    def __init__(
        self,
        url: str,
        token_source: Callable[[str], str] | None = None,
        session: requests.Session | None = None,
        timeout: float = 90,
    ):
        self.url = url.rstrip("/")
        self.token_source = token_source or google_id_token
        self.session = session or requests.Session()
        self.timeout = timeout

    def forward(self, method: str, path: str, query: dict[str, str], body: object) -> Answer:
        headers = {"Authorization": f"Bearer {self.token_source(self.url)}"}
        try:
            response = self.session.request(
                method, self.url + path, params=query, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException:
            return _error("The etl_api function could not be reached.")
        try:
            return response.json(), response.status_code
        except ValueError:
            return _error(f"The etl_api function answered {response.status_code} without JSON.")


def google_id_token(audience: str) -> str:
    """An ID token for the function at `audience`, from the runtime's service account."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    token: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    return token


def _error(message: str) -> Answer:
    return {"status": "error", "message": message, "details": []}, 502
