"""The parts one deployment runs on, made lazily from Settings.

| part       | "gcp"                        | "embedded"                                  |
|------------|------------------------------|---------------------------------------------|
| store      | Firestore                    | SQLite under Settings.data_dir              |
| secrets    | Secret Manager               | a 0600 file under Settings.data_dir         |
| warehouse  | BigQuery                     | BigQuery at Settings.bigquery_endpoint      |
| publisher  | Pub/Sub (the run topic)      | a worker pool calling the runner            |
| scheduler  | Cloud Scheduler              | a thread firing due crons (start_scheduler) |
"""

from functools import cached_property

from .config import Settings
from .secrets import FileSecretStore, SecretManagerStore, SecretStore
from .store import DocumentStore


class Stack:
    def __init__(self, settings: Settings, **parts):
        """parts: store, secrets, warehouse, publisher, scheduler to use instead of the defaults."""
        self.settings = settings
        for name, part in parts.items():
            setattr(self, name, part)

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

    @cached_property
    def warehouse(self):
        from .warehouse import Warehouse

        return Warehouse(self.settings)

    @cached_property
    def publisher(self):
        if self.settings.stack == "gcp":
            from .dispatch import PubSubPublisher

            return PubSubPublisher(self.settings.project, self.settings.run_topic)
        from .dispatch import LocalDispatcher
        from .runner import handle_message

        return LocalDispatcher(lambda data: handle_message(self, data))

    @cached_property
    def scheduler(self):
        from .scheduling import CloudScheduler, LocalScheduler

        if self.settings.stack == "gcp":
            return CloudScheduler(self.settings.project, self.settings.region, self.settings.run_topic)
        return LocalScheduler(self.store, self.publisher.publish)
