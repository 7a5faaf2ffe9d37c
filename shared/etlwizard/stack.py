"""The parts one deployment runs on, made lazily from Settings: the job store and the secret store.

"embedded": SQLite and a 0600 file under Settings.data_dir. "gcp": Firestore and Secret Manager.
"""

from functools import cached_property

from .config import Settings
from .secrets import FileSecretStore, SecretManagerStore, SecretStore
from .store import DocumentStore


class Stack:
    def __init__(self, settings: Settings, *, store: DocumentStore | None = None,
                 secrets: SecretStore | None = None):
        self.settings = settings
        if store is not None:
            self.store = store
        if secrets is not None:
            self.secrets = secrets

    @cached_property
    def store(self) -> DocumentStore:
        if self.settings.stack == "gcp":
            from .store.firestore import FirestoreStore

            return FirestoreStore(self.settings.project)
        from .store.embedded import EmbeddedStore

        return EmbeddedStore(self.settings.data_dir / "jobs.sqlite3")

    @cached_property
    def secrets(self) -> SecretStore:
        if self.settings.stack == "gcp":
            return SecretManagerStore(self.settings.project)
        return FileSecretStore(self.settings.data_dir / "secrets.json")
