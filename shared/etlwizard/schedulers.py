"""The schedulers: one entry per ETL job, firing its run message when its cron comes due, and a
second one for a job that verifies on a schedule of its own (checks.verify_schedule), firing the
message with the trigger "verify". Cloud Scheduler in production (publishing to the run topic);
LocalScheduler in the embedded stack."""

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

LOAD = "schedule"  # the trigger of a job's own schedule: a load
VERIFY = "verify"  # the trigger of its verification schedule


def entry_id(job_id: str, trigger: str = LOAD) -> str:
    """A job's entry in a scheduler: its id for its loads, <id>-verify for its verification."""
    return job_id if trigger == LOAD else f"{job_id}-{trigger}"


class Scheduler(Protocol):
    """What the job service asks of a scheduler: `trigger` says which of a job's entries."""

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False, trigger: str = LOAD) -> None: ...
    def pause(self, job_id: str, trigger: str = LOAD) -> None: ...
    def resume(self, job_id: str, trigger: str = LOAD) -> None: ...
    def delete(self, job_id: str, trigger: str = LOAD) -> None: ...


class CloudScheduler:
    """Google Cloud Scheduler: one scheduler job per ETL job (etl-<id>), and one more for a job that
    verifies on a schedule (etl-<id>-verify), publishing the run message to the topic."""

    def __init__(self, project: str, location: str, topic: str, client: "CloudSchedulerClient | None" = None):
        if client is None:
            from google.cloud import scheduler_v1

            client = scheduler_v1.CloudSchedulerClient()
        self.client = client
        self.parent = f"projects/{project}/locations/{location}"
        self.topic = f"projects/{project}/topics/{topic}"

    def name(self, job_id: str, trigger: str = LOAD) -> str:
        return f"{self.parent}/jobs/etl-{entry_id(job_id, trigger)}"

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False, trigger: str = LOAD) -> None:
        from google.api_core import exceptions

        expression = schedule.cron_expression()
        if expression is None:
            self.delete(job_id, trigger)
            return
        job = {
            "name": self.name(job_id, trigger),
            "description": f"ETL Wizard job {job_id}" + (" verification" if trigger == VERIFY else ""),
            "schedule": expression,
            "time_zone": schedule.timezone,
            "pubsub_target": {
                "topic_name": self.topic,
                "data": RunMessage(job_id, trigger).to_bytes(),
                "attributes": {"job_id": job_id},
            },
        }
        try:
            self.client.update_job(request={"job": job})
        except exceptions.NotFound:
            self.client.create_job(request={"parent": self.parent, "job": job})
        if paused:
            self.pause(job_id, trigger)

    def pause(self, job_id: str, trigger: str = LOAD) -> None:
        self.client.pause_job(request={"name": self.name(job_id, trigger)})

    def resume(self, job_id: str, trigger: str = LOAD) -> None:
        self.client.resume_job(request={"name": self.name(job_id, trigger)})

    def delete(self, job_id: str, trigger: str = LOAD) -> None:
        from google.api_core import exceptions

        try:
            self.client.delete_job(request={"name": self.name(job_id, trigger)})
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

    def upsert(self, job_id: str, schedule: Schedule, paused: bool = False, trigger: str = LOAD) -> None:
        if schedule.cron_expression() is None:
            self.delete(job_id, trigger)
            return
        entry = {
            "job_id": job_id,
            "schedule": schedule.to_dict(),
            "paused": paused,
            "checked_at": self.clock().isoformat(),
        }
        if trigger != LOAD:  # an entry without one (all entries before verification had one) loads
            entry["trigger"] = trigger
        self.store.put(self.COLLECTION, entry_id(job_id, trigger), entry)

    def pause(self, job_id: str, trigger: str = LOAD) -> None:
        self.store.transact(self.COLLECTION, entry_id(job_id, trigger), lambda e: e and {**e, "paused": True})

    def resume(self, job_id: str, trigger: str = LOAD) -> None:
        now = self.clock().isoformat()  # no burst of missed runs on resume
        self.store.transact(
            self.COLLECTION, entry_id(job_id, trigger), lambda e: e and {**e, "paused": False, "checked_at": now}
        )

    def delete(self, job_id: str, trigger: str = LOAD) -> None:
        self.store.delete(self.COLLECTION, entry_id(job_id, trigger))

    def fire_due(self, now: datetime | None = None) -> list[str]:
        """Publish a run message for every entry whose cron fell due since it was last checked;
        answers the entries fired (a job's id, or <id>-verify for its verification)."""
        now = now or self.clock()
        fired = []
        for entry in self.store.list(self.COLLECTION):
            if entry["paused"]:
                continue
            trigger = entry.get("trigger", LOAD)
            key = entry_id(entry["job_id"], trigger)
            try:
                schedule = Schedule(**entry["schedule"])
                due = schedule.next_runs(1, after=datetime.fromisoformat(entry["checked_at"]))
                if due and due[0] <= now:
                    self.publish(RunMessage(entry["job_id"], trigger).to_bytes())
                    fired.append(key)
                self.store.transact(self.COLLECTION, key, lambda e: e and {**e, "checked_at": now.isoformat()})
            except Exception:  # one broken entry must not stop the others
                log.exception("schedule %s of job %s could not fire", trigger, entry["job_id"])
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
