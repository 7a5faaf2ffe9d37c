"""Connection passwords, behind one interface: a 0600 file locally, Secret Manager on Google Cloud.

Nothing else in the code base holds a password longer than one call to a source.
"""

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import ConfigError, NotFound

if TYPE_CHECKING:
    from google.cloud.secretmanager import SecretManagerServiceClient


class SecretStore(Protocol):
    def put(self, name: str, value: str) -> None: ...
    def get(self, name: str) -> str: ...
    def delete(self, name: str) -> None: ...


class FileSecretStore:
    """A JSON file readable by its owner only, written atomically."""

    _lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict[str, str]:
        try:
            secrets: dict[str, str] = json.loads(self.path.read_text())
            return secrets
        except FileNotFoundError:
            return {}

    def _write(self, secrets: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(secrets, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def put(self, name: str, value: str) -> None:
        with self._lock:
            secrets = self._read()
            secrets[name] = value
            self._write(secrets)

    def get(self, name: str) -> str:
        with self._lock:
            secrets = self._read()
        if name not in secrets:
            raise NotFound(f"secret {name} does not exist")
        return secrets[name]

    def delete(self, name: str) -> None:
        with self._lock:
            secrets = self._read()
            if secrets.pop(name, None) is not None:
                self._write(secrets)


class SecretManagerStore:
    """Google Secret Manager: one secret per connection, the value in its latest version.

    The payload is JSON ({"value": ...}) so an empty password is still a non-empty payload.
    """

    def __init__(self, project: str, client: "SecretManagerServiceClient | None" = None):
        if client is None:
            from google.cloud import secretmanager

            client = secretmanager.SecretManagerServiceClient()
        self.client = client
        self.project = project

    def _path(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def put(self, name: str, value: str) -> None:
        from google.api_core import exceptions

        try:
            self.client.create_secret(
                request={
                    "parent": f"projects/{self.project}",
                    "secret_id": name,
                    "secret": {"replication": {"automatic": {}}, "labels": {"app": "etl-wizard"}},
                }
            )
        except exceptions.AlreadyExists:
            pass
        except exceptions.GoogleAPICallError as e:
            raise ConfigError(f"Secret Manager refused to create secret {name}: {e.message}") from None
        payload = json.dumps({"value": value}).encode()
        self.client.add_secret_version(request={"parent": self._path(name), "payload": {"data": payload}})

    def get(self, name: str) -> str:
        from google.api_core import exceptions

        try:
            response = self.client.access_secret_version(request={"name": f"{self._path(name)}/versions/latest"})
        except exceptions.NotFound:
            raise NotFound(f"secret {name} does not exist") from None
        value: str = json.loads(response.payload.data)["value"]
        return value

    def delete(self, name: str) -> None:
        from google.api_core import exceptions

        try:
            self.client.delete_secret(request={"name": self._path(name)})
        except exceptions.NotFound:
            pass
