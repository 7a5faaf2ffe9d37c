"""What a run is and says: its status, window, chunks and the message that starts it.

A run is one document in jobs/<id>/runs; `Run.from_doc` / `to_doc` are the only readers and writers
of its shape. A run message is the bytes Cloud Scheduler, "Run now" and fan-out publish.
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..errors import InvalidInput
from ..warehouse import JobStats


class RunStatus(StrEnum):
    RUNNING = "running"
    COMMITTING = "committing"  # every chunk staged: one chunk handler is committing them
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run held the job's lease
    ABANDONED = "abandoned"  # its worker stopped beating (killed, out of memory): the next run took over
    INTERRUPTED = "interrupted"  # its process shut down (SIGTERM) before it could commit


class ChunkStatus(StrEnum):
    PENDING = "pending"
    LOADING = "loading"
    DONE = "done"
    FAILED = "failed"


BoundText = int | str | None  # a stored window bound: an integer key, an ISO date/time, or open


@dataclass(frozen=True)
class Window:
    """lower <= cursor < upper, as ISO text (lower None: from the start of history)."""

    lower: str | None
    upper: str | None


@dataclass(frozen=True)
class Chunk:
    """One slice of a large window, staged by its own run-job call."""

    index: int
    lower: BoundText
    upper: BoundText
    status: ChunkStatus = ChunkStatus.PENDING
    rows: int = 0
    bytes: int = 0
    attempts: int = 0
    error: str | None = None
    heartbeat_at: str | None = None  # while loading: when its worker last said it was alive

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Chunk":
        fields = {k: v for k, v in doc.items() if k != "loading_since"}  # the older name of heartbeat_at
        return cls(
            **{
                **fields,
                "status": ChunkStatus(doc["status"]),
                "heartbeat_at": doc.get("heartbeat_at") or doc.get("loading_since"),
            }
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "index": self.index,
            "lower": self.lower,
            "upper": self.upper,
            "status": self.status.value,
            "rows": self.rows,
            "bytes": self.bytes,
            "attempts": self.attempts,
            "error": self.error,
        }
        if self.heartbeat_at is not None:
            doc["heartbeat_at"] = self.heartbeat_at
        return doc


@dataclass(frozen=True)
class Delivery:
    """One alert handed to one channel: a webhook (`target` is its host: the URL holds a token) or a
    Pub/Sub topic (its name). `error` says why it failed, without the URL."""

    channel: str  # webhook | pubsub
    target: str
    ok: bool
    attempts: int = 1
    error: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Delivery":
        return cls(doc["channel"], doc["target"], doc["ok"], doc.get("attempts", 1), doc.get("error"))

    def to_doc(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "target": self.target,
            "ok": self.ok,
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass(frozen=True)
class AlertSent:
    """An alert about a run (alerts.py), as the run's history shows it: where it went and how that
    went; `repeat_of` names the run whose alert already said the same (this one was not sent)."""

    kind: str  # run_failed | stuck | mismatch | unusual_rows
    at: str
    message: str
    deliveries: list[Delivery] = field(default_factory=list)
    repeat_of: str | None = None

    @property
    def delivered(self) -> bool:
        """Some channel took it, or it repeated one that was: someone has heard of it."""
        return self.repeat_of is not None or any(d.ok for d in self.deliveries)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "AlertSent":
        return cls(
            doc["kind"],
            doc["at"],
            doc.get("message", ""),
            [Delivery.from_doc(d) for d in doc.get("deliveries") or []],
            doc.get("repeat_of"),
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "at": self.at,
            "message": self.message,
            "deliveries": [d.to_doc() for d in self.deliveries],
        }
        if self.repeat_of is not None:
            doc["repeat_of"] = self.repeat_of
        return doc


# A run's document lists at most this many of its BigQuery jobs (the sums count every one): past it,
# loads (which bill nothing) make way first, then the oldest jobs.
LISTED_JOBS = 40


@dataclass(frozen=True)
class BigQueryUse:
    """What a run's BigQuery jobs cost, as the API reported each (warehouse.JobStats): how many, the
    sums of what they reported (None: no job reported it; the emulator reports few), how many of
    each kind, and the jobs themselves (at most LISTED_JOBS)."""

    jobs: int = 0
    bytes_processed: int | None = None
    bytes_billed: int | None = None
    slot_ms: int | None = None
    kinds: dict[str, int] = field(default_factory=dict)  # query | load | copy -> how many
    listed: list[JobStats] = field(default_factory=list)

    def plus(self, jobs: Sequence[JobStats]) -> "BigQueryUse":
        if not jobs:
            return self
        kinds = dict(self.kinds)
        for job in jobs:
            kinds[job.kind] = kinds.get(job.kind, 0) + 1
        listed = list(self.listed) + list(jobs)
        while len(listed) > LISTED_JOBS:
            load = next((i for i, job in enumerate(listed) if job.kind == "load"), 0)
            del listed[load]
        return BigQueryUse(
            self.jobs + len(jobs),
            _sum(self.bytes_processed, [j.bytes_processed for j in jobs]),
            _sum(self.bytes_billed, [j.bytes_billed for j in jobs]),
            _sum(self.slot_ms, [j.slot_ms for j in jobs]),
            kinds,
            listed,
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> "BigQueryUse":
        if not doc:
            return cls()
        return cls(
            doc.get("jobs", 0),
            doc.get("bytes_processed"),
            doc.get("bytes_billed"),
            doc.get("slot_ms"),
            dict(doc.get("kinds") or {}),
            [JobStats.from_doc(j) for j in doc.get("listed") or []],
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "bytes_processed": self.bytes_processed,
            "bytes_billed": self.bytes_billed,
            "slot_ms": self.slot_ms,
            "kinds": self.kinds,
            "listed": [j.to_doc() for j in self.listed],
            "unlisted": self.jobs - len(self.listed),
        }


def _sum(total: int | None, values: list[int | None]) -> int | None:
    reported = [v for v in values if v is not None]
    return total if not reported else (total or 0) + sum(reported)


@dataclass(frozen=True)
class Run:
    id: str
    job_id: str
    trigger: str  # manual | schedule
    status: RunStatus
    started_at: datetime
    window: Window | None = None
    rows: int = 0
    bytes: int = 0
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    dropped_array_nulls: int = 0  # NULL elements dropped from arrays (BigQuery arrays hold none)
    split_column: str | None = None  # set when the window fanned out into chunks
    chunks: list[Chunk] = field(default_factory=list)
    alerts: list[AlertSent] = field(default_factory=list)  # what was said about this run, and to whom
    bigquery: BigQueryUse = field(default_factory=BigQueryUse)  # its BigQuery jobs: run/costs.py

    @classmethod
    def new(cls, job_id: str, trigger: str, now: datetime, status: RunStatus = RunStatus.RUNNING) -> "Run":
        return cls(id=uuid.uuid4().hex[:12], job_id=job_id, trigger=trigger, status=status, started_at=now)

    def finished(self, status: RunStatus, now: datetime, error: str | None = None) -> "Run":
        return replace(
            self,
            status=status,
            error=error,
            finished_at=now,
            duration_seconds=round((now - self.started_at).total_seconds(), 3),
        )

    def with_chunk(self, index: int, **changes: Any) -> "Run":
        chunks = list(self.chunks)
        chunks[index] = replace(chunks[index], **changes)
        return replace(self, chunks=chunks)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Run":
        window = doc.get("window")
        finished = doc.get("finished_at")
        return cls(
            id=doc["id"],
            job_id=doc["job_id"],
            trigger=doc.get("trigger", "manual"),
            status=RunStatus(doc["status"]),
            started_at=datetime.fromisoformat(doc["started_at"]),
            window=Window(window["lower"], window["upper"]) if window else None,
            rows=doc.get("rows", 0),
            bytes=doc.get("bytes", 0),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            duration_seconds=doc.get("duration_seconds"),
            error=doc.get("error"),
            dropped_array_nulls=doc.get("dropped_array_nulls", 0),
            split_column=doc.get("split_column"),
            chunks=[Chunk.from_doc(c) for c in doc.get("chunks") or []],
            alerts=[AlertSent.from_doc(a) for a in doc.get("alerts") or []],
            bigquery=BigQueryUse.from_doc(doc.get("bigquery")),
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "job_id": self.job_id,
            "trigger": self.trigger,
            "status": self.status.value,
            "window": {"lower": self.window.lower, "upper": self.window.upper} if self.window else None,
            "rows": self.rows,
            "bytes": self.bytes,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "error": self.error,
            "dropped_array_nulls": self.dropped_array_nulls,
            "alerts": [a.to_doc() for a in self.alerts],
            "bigquery": self.bigquery.to_doc(),
        }
        if self.chunks:
            doc.update(split_column=self.split_column, chunks=[c.to_doc() for c in self.chunks])
        return doc


@dataclass(frozen=True)
class RunMessage:
    """{"job_id", "trigger"}, or for one chunk of a fanned-out run {"job_id", "run_id", "chunk"}."""

    job_id: str
    trigger: str = "manual"
    run_id: str | None = None
    chunk: int | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> "RunMessage":
        try:
            message = json.loads(data)
            job_id, trigger = message["job_id"], message.get("trigger", "manual")
            run_id, chunk = message.get("run_id"), message.get("chunk")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidInput("message", "a run message is JSON with a job_id") from None
        if (
            not isinstance(job_id, str)
            or not isinstance(trigger, str)
            or (
                chunk is not None
                and (not isinstance(chunk, int) or isinstance(chunk, bool) or not isinstance(run_id, str))
            )
        ):
            raise InvalidInput("message", "a run message has a job_id and, for a chunk, a run_id and its index")
        return cls(job_id, trigger, run_id, chunk)

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {"job_id": self.job_id}
        if self.chunk is None:
            body["trigger"] = self.trigger
        else:
            body.update(run_id=self.run_id, chunk=self.chunk)
        return json.dumps(body).encode()
