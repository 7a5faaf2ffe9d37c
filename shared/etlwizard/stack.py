"""The parts one deployment runs on, made lazily from Settings.

| part       | "gcp"                        | "embedded"                                  |
|------------|------------------------------|---------------------------------------------|
| store      | Firestore                    | SQLite under Settings.data_dir              |
| secrets    | Secret Manager               | a 0600 file under Settings.data_dir         |
| warehouse  | BigQuery                     | BigQuery at Settings.bigquery_endpoint      |
| publisher  | Pub/Sub (the run topic)      | a worker pool calling the run handler       |
| scheduler  | Cloud Scheduler              | a thread firing due crons (start_scheduler) |
| cloudsql   | Cloud SQL Python Connector   | the same (for Cloud SQL connections only)   |

The stack knows no run engine: an entry point that runs jobs in this process (the embedded stack)
hands it `run_handler`, which the worker pool calls with each run message.
"""

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from .clock import Clock, utc_now
from .config import Settings
from .dispatch import LocalDispatcher, Publisher, PubSubPublisher
from .reach.cloudsql import CloudSqlConnector
from .schedulers import CloudScheduler, LocalScheduler, Scheduler
from .secrets import FileSecretStore, SecretManagerStore, SecretStore
from .sources.pool import SourcePools
from .store import DocumentStore
from .warehouse import Warehouse

RunHandler = Callable[["Stack", bytes], Any]


class Stack:
    def __init__(
        self,
        settings: Settings,
        *,
        run_handler: RunHandler | None = None,
        clock: Clock = utc_now,
        stopping: threading.Event | None = None,
        **parts: Any,
    ):
        """parts: store, secrets, warehouse, publisher, scheduler to use instead of the defaults.
        stopping: set when the process shuts down (SIGTERM): runs stop, record it and free their job."""
        self.settings = settings
        self.run_handler = run_handler
        self.clock = clock
        self.stopping = stopping or threading.Event()
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
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings, stopping=self.stopping)

    @cached_property
    def publisher(self) -> Publisher:
        if self.settings.stack == "gcp":
            return PubSubPublisher(self.settings.project, self.settings.run_topic)
        handler = self.run_handler
        if handler is None:
            raise RuntimeError("this embedded stack was made without a run_handler: it cannot run jobs")
        return LocalDispatcher(lambda data: handler(self, data))

    @cached_property
    def scheduler(self) -> Scheduler:
        if self.settings.stack == "gcp":
            return CloudScheduler(self.settings.project, self.settings.region, self.settings.run_topic)
        return LocalScheduler(self.store, self.publisher.publish)

    def close(self) -> None:
        """Close the source connections this stack keeps open (made only when first used)."""
        if "pools" in self.__dict__:
            self.pools.close()
        if "cloudsql" in self.__dict__:
            self.cloudsql.close()

    @cached_property
    def cloudsql(self) -> CloudSqlConnector:
        """Google's Cloud SQL connector: the catalog driver's way to a Cloud SQL instance."""
        from .reach.cloudsql import GoogleCloudSqlConnector  # google's connector, loaded when first used

        return GoogleCloudSqlConnector()

    @cached_property
    def pools(self) -> SourcePools:
        """Open catalog connections to the sources, a bounded pool per saved connection."""
        return SourcePools(self.settings)
