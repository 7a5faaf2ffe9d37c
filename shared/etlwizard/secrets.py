"""Connection passwords, behind one interface: a 0600 file locally, Secret Manager on Google Cloud.

Besides the secret store, only a saved connection's pool of open connections (sources/pool.py) holds
its password, in memory, to open new ones; nothing writes it anywhere. The embedded
stack's other files are as private (private_dir, private_file): the data directory 0700, all in it 0600.
"""

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import ConfigError, NotFound

if TYPE_CHECKING:
    from google.cloud.secretmanager import SecretManagerServiceClient


def private_dir(path: Path) -> Path:
    """Make `path` a directory only its owner may open, and all it holds owner-only: the embedded
    stack keeps connection details, job history and copied tables there. What an earlier version
    left 0755/0644 is tightened too. Symbolic links are left alone (chmod would follow them)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for root, _dirs, files in os.walk(path):
        _chmod(root, 0o700)
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                _chmod(file, 0o600)
    return path


def _chmod(path: str, mode: int) -> None:
    # the running emulator makes and removes files (its DuckDB WAL) while this walks
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, mode)


def private_file(path: Path, flags: int = os.O_WRONLY) -> int:
    """Open (creating it if missing) a file only its owner may read: an fd for os.fdopen."""
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # the mode above counts only when the file is new
    return fd


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
        private_dir(self.path.parent)
        tmp = self.path.with_suffix(".tmp")
        with os.fdopen(private_file(tmp, os.O_WRONLY | os.O_TRUNC), "w") as f:
            json.dump(secrets, f)
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
