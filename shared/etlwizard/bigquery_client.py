"""The one place a BigQuery client is made: Google's API, or the emulator in the embedded stack."""

import json

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from .config import Settings


def make_client(settings: Settings, project: str | None = None, credentials_json: str = "") -> bigquery.Client:
    """A client for `project` (default: the settings' project). `credentials_json` is a service
    account key kept in the secret store for a BigQuery source in another project; empty means the
    runtime's own identity."""
    project = project or settings.project
    if settings.bigquery_endpoint:
        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bigquery_endpoint),
        )
    credentials = None
    if credentials_json:
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_info(json.loads(credentials_json))
    return bigquery.Client(project=project, credentials=credentials)
