"""The schedulers: one entry per ETL job, firing its run message when its cron comes due. Cloud
Scheduler in production (publishing to the run topic); LocalScheduler in the embedded stack."""

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from .clock import Clock, utc_now
from .run.state import RunMessage
from .scheduling import Schedule
from .store import DocumentStore

if TYPE_CHECKING:
    from google.cloud.scheduler_v1 import CloudSchedulerClient

log = logging.getLogger(__name__)


class Scheduler(Protocol):
    """What the job service asks of a scheduler."""

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False) -> None: ...
    def pause(self, job_id: str) -> None: ...
    def resume(self, job_id: str) -> None: ...
    def delete(self, job_id: str) -> None: ...


class CloudScheduler:
    """Google Cloud Scheduler: one scheduler job per ETL job, publishing the run message to the topic."""

    def __init__(self, project: str, location: str, topic: str, client: "CloudSchedulerClient | None" = None):
        if client is None:
            from google.cloud import scheduler_v1

            client = scheduler_v1.CloudSchedulerClient()
        self.client = client
        self.parent = f"projects/{project}/locations/{location}"
        self.topic = f"projects/{project}/topics/{topic}"

    def name(self, job_id: str) -> str:
        return f"{self.parent}/jobs/etl-{job_id}"

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False) -> None:
        from google.api_core import exceptions

        expression = schedule.cron_expression()
        if expression is None:
            self.delete(job_id)
            return
        job = {
            "name": self.name(job_id),
            "description": f"ETL Wizard job {job_id}",
            "schedule": expression,
            "time_zone": schedule.timezone,
            "pubsub_target": {
                "topic_name": self.topic,
                "data": RunMessage(job_id, "schedule").to_bytes(),
                "attributes": {"job_id": job_id},
            },
        }
        try:
            self.client.update_job(request={"job": job})
        except exceptions.NotFound:
            self.client.create_job(request={"parent": self.parent, "job": job})
        if paused:
            self.pause(job_id)

    def pause(self, job_id: str) -> None:
        self.client.pause_job(request={"name": self.name(job_id)})

    def resume(self, job_id: str) -> None:
        self.client.resume_job(request={"name": self.name(job_id)})

    def delete(self, job_id: str) -> None:
        from google.api_core import exceptions

        try:
            self.client.delete_job(request={"name": self.name(job_id)})
        except exceptions.NotFound:
            pass


class LocalScheduler:
    """The embedded stack's scheduler: entries kept in the job store (as Cloud Scheduler keeps its
    own), a daemon thread that publishes the run message when an entry's cron comes due."""

    COLLECTION = "schedules"

    def __init__(
        self,
        store: DocumentStore,
        publish: Callable[[bytes], object],
        tick_seconds: float = 15.0,
        clock: Clock = utc_now,
    ):
        self.store = store
        self.publish = publish
        self.tick_seconds = tick_seconds
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False) -> None:
        if schedule.cron_expression() is None:
            self.delete(job_id)
            return
        self.store.put(
            self.COLLECTION,
            job_id,
            {
                "job_id": job_id,
                "schedule": schedule.to_dict(),
                "paused": paused,
                "checked_at": self.clock().isoformat(),
            },
        )

    def pause(self, job_id: str) -> None:
        self.store.transact(self.COLLECTION, job_id, lambda e: e and {**e, "paused": True})

    def resume(self, job_id: str) -> None:
        now = self.clock().isoformat()  # no burst of missed runs on resume
        self.store.transact(self.COLLECTION, job_id, lambda e: e and {**e, "paused": False, "checked_at": now})

    def delete(self, job_id: str) -> None:
        self.store.delete(self.COLLECTION, job_id)

    def fire_due(self, now: datetime | None = None) -> list[str]:
        """Publish a run for every entry whose cron fell due since it was last checked."""
        now = now or self.clock()
        fired = []
        for entry in self.store.list(self.COLLECTION):
            if entry["paused"]:
                continue
            try:
                schedule = Schedule(**entry["schedule"])
                due = schedule.next_runs(1, after=datetime.fromisoformat(entry["checked_at"]))
                if due and due[0] <= now:
                    self.publish(RunMessage(entry["job_id"], "schedule").to_bytes())
                    fired.append(entry["job_id"])
                self.store.transact(
                    self.COLLECTION, entry["job_id"], lambda e: e and {**e, "checked_at": now.isoformat()}
                )
            except Exception:  # one broken entry must not stop the others
                log.exception("schedule of job %s could not fire", entry["job_id"])
        return fired

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.tick_seconds):
                try:
                    self.fire_due()
                except Exception:
                    log.exception("local scheduler tick failed")

        self._thread = threading.Thread(target=loop, name="etl-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
