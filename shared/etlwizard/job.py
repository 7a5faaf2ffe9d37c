"""A job: what to load from where into which table, when; kept as one document in the job store
(docs/architecture.md, "The job and its runs").

`Job.from_doc` / `to_doc` are the only readers and writers of that document's shape; the job
service (jobs.py) and the run engine (run/) speak `Job`.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .model import Column
from .scheduling import Schedule

COLLECTION = "jobs"


def runs_collection(job_id: str) -> str:
    """Runs are a sub-collection of their job."""
    return f"{COLLECTION}/{job_id}/runs"


class LoadType(StrEnum):
    TRANSACTIONAL = "transactional"  # incremental by a timestamp cursor
    CATALOG = "catalog"  # a full snapshot each run


class JobState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class DestinationMode(StrEnum):
    NEW = "new"  # the job made the table
    EXISTING = "existing"  # the table was there, checked for compatibility


@dataclass(frozen=True)
class Destination:
    mode: DestinationMode
    dataset: str
    table: str

    def to_doc(self) -> dict[str, str]:
        return {"mode": self.mode.value, "dataset": self.dataset, "table": self.table}


@dataclass(frozen=True)
class Lease:
    """Which run may work on the job, until when (renewed while it works)."""

    run_id: str
    expires_at: datetime


@dataclass(frozen=True)
class AlertChannels:
    """Where this job's alerts go besides the deployment's defaults (alerts.py). The webhook's URL
    holds its token, so it lives in the secret store (alerts.webhook_secret_name); the job keeps its
    host, to show where alerts go."""

    webhook_host: str | None = None
    topic: str | None = None  # a Pub/Sub topic: a name in the project, or projects/P/topics/T

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> "AlertChannels":
        return cls((doc or {}).get("webhook_host"), (doc or {}).get("topic"))

    def to_doc(self) -> dict[str, str | None]:
        return {"webhook_host": self.webhook_host, "topic": self.topic}


DELETED_ROWS = ("keep", "mark", "remove")


@dataclass(frozen=True)
class Checks:
    """What a job proves besides loading (README, "Verification" and "Deleted rows"): verification
    after each run, and repair of what it finds; rows deleted at the source kept, marked
    (_etl_deleted_at) or removed, swept after a run at most daily, or after every run; and verification
    on a schedule of its own besides (`verify_schedule`: None, none), a second scheduler entry whose
    message has the trigger "verify" (schedulers.py, run/engine.py)."""

    verify: bool = True
    repair: bool = False
    deleted_rows: str = "keep"
    sweep_every_run: bool = False
    verify_schedule: Schedule | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> "Checks":
        fields = dict(doc or {})
        schedule = fields.pop("verify_schedule", None)
        return cls(**fields, verify_schedule=Schedule(**schedule) if schedule else None)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "verify": self.verify,
            "repair": self.repair,
            "deleted_rows": self.deleted_rows,
            "sweep_every_run": self.sweep_every_run,
        }
        if self.verify_schedule is not None:  # shown (and stored) only when there is one
            doc["verify_schedule"] = self.verify_schedule.to_dict()
        return doc


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    connection_id: str
    schema_name: str
    table_name: str
    source_id: str  # stamped on every row it loads: several sources may share one table
    selected_columns: list[str]
    columns: list[Column]  # the selected columns as the source described them
    load_type: LoadType
    timestamp_column: str | None  # the cursor of a transactional job
    primary_key: list[str]
    historical_start_date: str | None  # the first day a transactional job loads (None: all history)
    destination: Destination
    schedule: Schedule
    state: JobState
    watermark: str | None  # the last committed window's upper bound, ISO
    created_at: datetime
    updated_at: datetime
    lease: Lease | None = None
    pending_run: str | None = None  # a fanned-out run that failed: the next trigger resumes it
    alerts: AlertChannels = AlertChannels()
    # kind -> what the last alert of that kind was about (a run id): an event is alerted once
    last_alerts: dict[str, str] = field(default_factory=dict)
    checks: Checks = field(default_factory=Checks)
    last_swept_at: str | None = None  # the last sweep for deleted rows, ISO

    @property
    def marks_deleted(self) -> bool:
        """Rows deleted at the source are marked in its table (_etl_deleted_at), not removed."""
        return self.checks.deleted_rows == "mark"

    @property
    def cursor(self) -> Column | None:
        """The cursor column, as the job stored it (None for catalog loads)."""
        if self.load_type is not LoadType.TRANSACTIONAL or self.timestamp_column is None:
            return None
        return next(c for c in self.columns if c.name == self.timestamp_column)

    def touched(self, now: datetime, **changes: Any) -> "Job":
        return replace(self, updated_at=now, **changes)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Job":
        lease = doc.get("lease")
        return cls(
            id=doc["id"],
            name=doc["name"],
            connection_id=doc["connection_id"],
            schema_name=doc["schema_name"],
            table_name=doc["table_name"],
            source_id=doc["source_id"],
            selected_columns=list(doc["selected_columns"]),
            columns=[Column.from_dict(c) for c in doc["columns"]],
            load_type=LoadType(doc["load_type"]),
            timestamp_column=doc.get("timestamp_column"),
            primary_key=list(doc.get("primary_key") or []),
            historical_start_date=doc.get("historical_start_date"),
            destination=Destination(
                DestinationMode(doc["destination"].get("mode", "new")),
                doc["destination"]["dataset"],
                doc["destination"]["table"],
            ),
            schedule=Schedule(**doc["schedule"]),
            state=JobState(doc["state"]),
            watermark=doc.get("watermark"),
            created_at=datetime.fromisoformat(doc["created_at"]),
            updated_at=datetime.fromisoformat(doc["updated_at"]),
            lease=Lease(lease["run_id"], datetime.fromisoformat(lease["expires_at"])) if lease else None,
            pending_run=doc.get("pending_run"),
            alerts=AlertChannels.from_doc(doc.get("alerts")),
            last_alerts=dict(doc.get("last_alerts") or {}),
            checks=Checks.from_doc(doc.get("checks")),
            last_swept_at=doc.get("last_swept_at"),
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "connection_id": self.connection_id,
            "schema_name": self.schema_name,
            "table_name": self.table_name,
            "source_id": self.source_id,
            "selected_columns": list(self.selected_columns),
            "columns": [c.to_dict() for c in self.columns],
            "load_type": self.load_type.value,
            "timestamp_column": self.timestamp_column,
            "primary_key": list(self.primary_key),
            "historical_start_date": self.historical_start_date,
            "destination": self.destination.to_doc(),
            "schedule": self.schedule.to_dict(),
            "state": self.state.value,
            "watermark": self.watermark,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "alerts": self.alerts.to_doc(),
            "checks": self.checks.to_doc(),
        }
        if self.last_swept_at is not None:
            doc["last_swept_at"] = self.last_swept_at
        if self.last_alerts:
            doc["last_alerts"] = dict(self.last_alerts)
        if self.lease is not None:
            doc["lease"] = {"run_id": self.lease.run_id, "expires_at": self.lease.expires_at.isoformat()}
        if self.pending_run is not None:
            doc["pending_run"] = self.pending_run
        return doc
