"""Alerts: a job tells someone when it needs a person (README, "Alerts").

Events (`AlertKind`):
- run_failed: a run was recorded failed. A run that fails the same way (the same sentence) as the
  job's previous run, whose alert got through, is not sent again: Pub/Sub's redeliveries of a
  transient failure, or a job failing every hour for one reason, alert once, when it starts.
- stuck: a trigger was skipped because the lease is held by a run that has been going for longer
  than a lease (Settings.lease_seconds): not a dead worker (its lease would have lapsed and the
  trigger taken over) but one still beating while the job gets nowhere, or runs longer than the
  schedule leaves them. Once per stuck run.
- mismatch: verification found buckets that differ; the verification code calls `notify`.
- unusual_rows: a succeeded run loaded fewer than a tenth or more than ten times the median rows of
  the job's last 10 succeeded runs that loaded any (at least 5 of them: `row_check`). A transactional
  run with nothing new is not checked (an empty window is normal); a catalog run of 0 rows is. A run
  at about the level of the previous one, already alerted, is not sent again.

Channels: the deployment's defaults (Settings.alert_topic, alert_webhook) and the job's own
(`Job.alerts`), all of them, each address once. Pub/Sub gets one JSON message per event with the
attributes kind and job_id, as BigQuery Data Transfer Service's run notifications; a webhook gets a
POST of Slack's message JSON ("text", "blocks") with the same fields beside it, three attempts with
backoff, each waiting Settings.alert_timeout. Only https; a redirect is not followed.

Each event is sent once: it is claimed in the job's document (`Job.last_alerts`) before anything is
sent. What each channel answered is kept on the run (`Run.alerts`): a webhook by its host only, as
its URL holds a token. Nothing here raises: a failing alert is recorded and logged, and never fails
a run.
"""

import json
import logging
import re
import ssl
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from .config import Settings, webhook_problem
from .errors import InvalidInput, NotFound
from .health import CHECK_TRIGGERS
from .job import COLLECTION, AlertChannels, Job, LoadType
from .logs import fields
from .run.records import change_run, get_run, list_runs
from .run.state import AlertSent, Delivery, Run, RunStatus
from .stack import Stack

log = logging.getLogger(__name__)

VERSION = 1  # of the event's JSON: consumers of the topic may check it
ATTEMPTS = 3  # per webhook: the first, then two retries
BACKOFF_SECONDS = 1.0  # before the first retry, doubling; a Retry-After header up to MAX_WAIT instead
MAX_WAIT_SECONDS = 10.0
WEBHOOK_SECRET_PREFIX = "etl-alert-"  # infra/ lets the functions read (and the API write) these secrets only


class AlertKind(StrEnum):
    RUN_FAILED = "run_failed"
    STUCK = "stuck"
    MISMATCH = "mismatch"
    UNUSUAL_ROWS = "unusual_rows"


@dataclass(frozen=True)
class Alert:
    """One event, as every channel gets it. `kind` is an AlertKind (its value, as a string, is
    accepted too); `at` is ISO 8601; `details` is JSON-safe (other values are sent as text)."""

    kind: str
    job_id: str
    job_name: str
    run_id: str | None
    message: str
    at: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AlertKind(self.kind))

    @classmethod
    def new(
        cls,
        kind: str,
        job: Job,
        run_id: str | None,
        message: str,
        at: datetime,
        details: dict[str, Any] | None = None,
    ) -> "Alert":
        return cls(kind, job.id, job.name, run_id, message, at.isoformat(), details or {})

    def to_dict(self) -> dict[str, Any]:
        """The event's fields: the Pub/Sub message, and the webhook's body beside Slack's."""
        return {
            "version": VERSION,
            "kind": str(self.kind),
            "job_id": self.job_id,
            "job_name": self.job_name,
            "run_id": self.run_id,
            "message": self.message,
            "at": self.at,
            "details": self.details,
        }

    def title(self) -> str:
        return {
            AlertKind.RUN_FAILED: f"Job {self.job_name}: run {self.run_id} failed",
            AlertKind.STUCK: f"Job {self.job_name} is stuck",
            AlertKind.MISMATCH: f"Job {self.job_name}: verification found a mismatch",
            AlertKind.UNUSUAL_ROWS: f"Job {self.job_name}: run {self.run_id} loaded an unusual number of rows",
        }[AlertKind(self.kind)]

    def slack_message(self) -> dict[str, Any]:
        """What Slack's incoming webhooks take: "text" (also the notification's), and blocks."""
        icon = {AlertKind.RUN_FAILED: ":red_circle:", AlertKind.STUCK: ":hourglass:"}.get(
            AlertKind(self.kind), ":warning:"
        )
        text = f"{icon} {_slack_escape(self.title())}: {_slack_escape(self.message)}"
        where = f"ETL Wizard · job `{self.job_id}`" + (f" · run `{self.run_id}`" if self.run_id else "")
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{where} · {self.at}"}]},
            ],
        }


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup: https://api.slack.com/reference/surfaces/formatting"""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=str, ensure_ascii=False).encode()


# --- Channels -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """Where alerts can go, and how to send one there."""

    channel: str  # webhook | pubsub
    target: str  # what the run's history shows: the webhook's host, the topic's path
    address: str = field(repr=False)  # what tells two channels apart (the URL itself: never shown)
    send: Callable[[Alert], Delivery] = field(repr=False)


def _webhook(settings: Settings, url: str, stopping: threading.Event) -> Channel:
    host = urlsplit(url).hostname or "?"
    return Channel("webhook", host, url, lambda alert: post_webhook(settings, url, alert, stopping))


def _topic(settings: Settings, topic: str) -> Channel:
    path = topic_path(settings.project, topic)
    return Channel("pubsub", path, path, lambda alert: publish_alert(settings, path, alert))


def channels(stack: Stack, job: Job) -> list[Channel]:
    """The defaults, then the job's own; a webhook or topic named twice, once."""
    settings, found = stack.settings, []
    if settings.alert_topic:
        found.append(_topic(settings, settings.alert_topic))
    if settings.alert_webhook:
        found.append(_webhook(settings, settings.alert_webhook, stack.stopping))
    if job.alerts.topic:
        found.append(_topic(settings, job.alerts.topic))
    if job.alerts.webhook_host:
        try:
            found.append(_webhook(settings, stack.secrets.get(webhook_secret_name(job.id)), stack.stopping))
        except NotFound:
            problem = Delivery("webhook", job.alerts.webhook_host, False, 0, "its URL is gone from the secret store")
            found.append(Channel("webhook", job.alerts.webhook_host, "", lambda _alert: problem))
    unique: dict[tuple[str, str], Channel] = {}
    for channel in found:
        unique.setdefault((channel.channel, channel.address or channel.target), channel)
    return list(unique.values())


def post_webhook(settings: Settings, url: str, alert: Alert, stopping: threading.Event | None = None) -> Delivery:
    """POST the alert: Slack's message with the event's fields beside it. A timeout, a refused
    connection, 408, 429 and 5xx are tried again (ATTEMPTS in all, backoff or Retry-After between);
    another answer is final. The error never holds the URL, only what went wrong."""
    host = urlsplit(url).hostname or "?"
    problem = webhook_problem(url)
    if problem:
        return Delivery("webhook", host, False, 0, problem)
    body = _json({**alert.slack_message(), **alert.to_dict()})
    context = ssl.create_default_context(cafile=str(settings.alert_ca_file) if settings.alert_ca_file else None)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "etl-wizard-alerts/1"},
    )
    error, wait = "", BACKOFF_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        retry_after: float | None = None
        try:
            with opener.open(request, timeout=settings.alert_timeout) as response:
                response.read(2048)
            return Delivery("webhook", host, True, attempt)
        except urllib.error.HTTPError as e:
            error = _scrub(f"HTTP {e.code} {e.reason}{_answer(e)}", url)
            retry = e.code in (408, 429) or e.code >= 500
            retry_after = _retry_after(e.headers)
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(reason, TimeoutError):
                error = f"no answer within {settings.alert_timeout:g} s"
            else:
                error = _scrub(str(reason) or type(reason).__name__, url)
            retry = not isinstance(reason, ssl.SSLCertVerificationError)  # a certificate does not heal
        if not retry or attempt == ATTEMPTS or (stopping is not None and stopping.is_set()):
            return Delivery("webhook", host, False, attempt, error)
        time.sleep(min(retry_after if retry_after is not None else wait, MAX_WAIT_SECONDS))
        wait *= 2
    return Delivery("webhook", host, False, ATTEMPTS, error)  # not reached


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect has failed: following it could send the alert (and
    for a 307, its body) somewhere else, over http even."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _answer(error: urllib.error.HTTPError) -> str:
    """The start of an error's body (Slack says why: `invalid_token`, `channel_not_found`)."""
    try:
        text = error.read(200).decode("utf-8", "replace").strip()
    except Exception:
        return ""
    finally:
        error.close()
    text = " ".join(text.split())
    return f": {text[:120]}" if text else ""


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _scrub(text: str, url: str) -> str:
    """An error sentence with the URL's path and query (where a webhook keeps its token) taken out."""
    parts = urlsplit(url)
    for secret in (url, parts.path + ("?" + parts.query if parts.query else ""), parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text


TOPIC_NAME = re.compile(r"(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
TOPIC_PATH = re.compile(r"projects/([a-z][a-z0-9.:-]{4,62}[a-z0-9])/topics/(.+)")


def topic_problem(topic: str) -> str | None:
    """Why `topic` is not a Pub/Sub topic name (or projects/P/topics/T path); None when it is one."""
    match = TOPIC_PATH.fullmatch(topic)
    name = match.group(2) if match else topic
    if not TOPIC_NAME.fullmatch(name):
        return (
            "a Pub/Sub topic name is 3 to 255 letters, digits and - _ . ~ + %, starting with a letter "
            "(not goog), or projects/PROJECT/topics/NAME"
        )
    return None


def topic_path(project: str, topic: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


_publisher_lock = threading.Lock()
_publisher: Any = None


def _publisher_client() -> Any:
    """One Pub/Sub client per process, made when the first alert goes to a topic (it honours
    PUBSUB_EMULATOR_HOST, as the run topic's does)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            from google.cloud.pubsub_v1 import PublisherClient

            _publisher = PublisherClient()
        return _publisher


def publish_alert(settings: Settings, path: str, alert: Alert) -> Delivery:
    """One message: the event's JSON, attributes kind and job_id."""
    from google.api_core import exceptions

    try:
        future = _publisher_client().publish(path, _json(alert.to_dict()), kind=str(alert.kind), job_id=alert.job_id)
        future.result(timeout=max(10.0, 2 * settings.alert_timeout))
    except exceptions.GoogleAPICallError as e:
        return Delivery("pubsub", path, False, 1, f"Pub/Sub refused it: {e.message}")
    except TimeoutError:
        return Delivery("pubsub", path, False, 1, "Pub/Sub did not confirm it in time")
    except Exception as e:  # credentials, a closed client: recorded, never the run's failure
        return Delivery("pubsub", path, False, 1, f"{type(e).__name__}: {e}")
    return Delivery("pubsub", path, True, 1)


# --- Sending, once --------------------------------------------------------------------------------


def notify(stack: Stack, job: Job, alert: Alert, *, record_on: str | None = None) -> AlertSent | None:
    """Send `alert` to every channel of `job` unless an alert of its kind about the same run (and,
    for a mismatch, the same details["verification_id"]) was sent before. What each channel
    answered is recorded on the run `record_on` (default: alert.run_id) and returned; None when it
    was sent before, or there is no channel. Never raises."""
    try:
        if not claim(stack, job.id, alert.kind, _key(alert)):
            return None
        return deliver(stack, job, alert, record_on=record_on or alert.run_id)
    except Exception:
        log.warning("job %s: the %s alert could not be sent", job.id, alert.kind, exc_info=True)
        return None


def _key(alert: Alert) -> str:
    verification = alert.details.get("verification_id")
    return (alert.run_id or alert.at) + (f"/{verification}" if verification else "")


def claim(stack: Stack, job_id: str, kind: str, key: str) -> bool:
    """Mark in the job's document that the `kind` event about `key` is being told; False when it was
    already. A store failure answers True: better an alert twice than none."""
    try:
        marked = stack.store.transact(COLLECTION, job_id, lambda doc: _marked(doc, str(kind), key))
    except Exception:
        log.warning("job %s: could not mark the %s alert as sent", job_id, kind, exc_info=True)
        return True
    return marked is not None


def _marked(doc: dict[str, Any] | None, kind: str, key: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    job = Job.from_doc(doc)
    if job.last_alerts.get(kind) == key:
        return None
    return replace(job, last_alerts={**job.last_alerts, kind: key}).to_doc()


def deliver(
    stack: Stack, job: Job, alert: Alert, *, record_on: str | None, repeat_of: str | None = None
) -> AlertSent | None:
    """Hand the alert to each channel (none when it repeats `repeat_of`'s) and record the answers."""
    found = channels(stack, job)
    if not found:
        log.info("job %s: %s (no alert channel set)", job.id, alert.message, extra=fields(event="alert_unsent"))
        return None
    deliveries = [] if repeat_of else [_send(channel, alert) for channel in found]
    sent = AlertSent(str(alert.kind), alert.at, alert.message, deliveries, repeat_of)
    if repeat_of:
        log.info("job %s: %s alert not sent again (run %s said it)", job.id, alert.kind, repeat_of)
    for d in deliveries:
        log.log(
            logging.INFO if d.ok else logging.WARNING,
            "job %s: %s alert to %s %s: %s",
            job.id,
            alert.kind,
            d.channel,
            d.target,
            "sent" if d.ok else f"failed after {d.attempts} attempt(s): {d.error}",
            extra=fields(event="alert_sent" if d.ok else "alert_failed", kind=str(alert.kind), channel=d.channel),
        )
    if record_on is not None:
        try:
            change_run(stack, job.id, record_on, lambda r: replace(r, alerts=[*r.alerts, sent]))
        except Exception:
            log.warning("job %s: could not record the %s alert on run %s", job.id, alert.kind, record_on, exc_info=True)
    return sent


def _send(channel: Channel, alert: Alert) -> Delivery:
    try:
        return channel.send(alert)
    except Exception as e:  # a bug in a channel: recorded as its failure
        log.warning("alert channel %s %s failed", channel.channel, channel.target, exc_info=True)
        return Delivery(channel.channel, channel.target, False, 1, type(e).__name__)


# --- The run engine's events ----------------------------------------------------------------------


def run_failed(stack: Stack, job_id: str, run: Run) -> AlertSent | None:
    """A failed run the caller has claimed (claim(..., RUN_FAILED, run.id)): tell its channels,
    unless the job's previous run failed the same way and that got through. Never raises."""
    try:
        job = _job(stack, job_id)
        if job is None:
            return None
        details = {
            "status": run.status.value,
            "error": run.error,
            "trigger": run.trigger,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "rows": run.rows,
            "window": {"lower": run.window.lower, "upper": run.window.upper} if run.window else None,
        }
        alert = Alert.new(AlertKind.RUN_FAILED, job, run.id, run.error or "The run failed.", stack.clock(), details)
        return deliver(stack, job, alert, record_on=run.id, repeat_of=_same_failure(stack, run))
    except Exception:
        log.warning("job %s: the run_failed alert of run %s could not be sent", job_id, run.id, exc_info=True)
        return None


def _same_failure(stack: Stack, run: Run) -> str | None:
    """The job's previous finished run, if it failed with the same sentence and its alert got through."""
    earlier = [
        r
        for r in list_runs(stack, run.job_id)
        if r.id != run.id
        and r.started_at <= run.started_at
        and r.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
        and r.trigger not in CHECK_TRIGGERS
    ]
    if not earlier:
        return None
    previous = earlier[0]
    told = any(a.kind == AlertKind.RUN_FAILED and a.delivered for a in previous.alerts)
    return previous.id if previous.status is RunStatus.FAILED and previous.error == run.error and told else None


def skipped(stack: Stack, job_id: str, skipped_run: Run) -> AlertSent | None:
    """A trigger found the lease held: if the run holding it has been going longer than a lease,
    the job is stuck; alerted once per stuck run, recorded on the skipped run. Never raises."""
    try:
        job = _job(stack, job_id)
        if job is None or job.lease is None:
            return None
        holder = get_run(stack, job_id, job.lease.run_id)
        if holder is None:
            return None
        held = (skipped_run.started_at - holder.started_at).total_seconds()
        lease_seconds = stack.settings.lease_seconds
        if held <= lease_seconds:
            return None
        message = (
            f"Run {holder.id} has held the job for {_span(held)} (since {holder.started_at:%Y-%m-%d %H:%M:%S} UTC), "
            f"longer than a lease ({lease_seconds} s): the {skipped_run.trigger} trigger at "
            f"{skipped_run.started_at:%H:%M:%S} UTC was skipped. It is still renewing its lease: "
            "look at what it waits on (a lock, a slow source), or give it a schedule it can keep."
        )
        details = {
            "stuck_run_id": holder.id,
            "running_since": holder.started_at.isoformat(),
            "held_seconds": round(held),
            "lease_seconds": lease_seconds,
            "lease_expires_at": job.lease.expires_at.isoformat(),
            "skipped_run_id": skipped_run.id,
            "skipped_trigger": skipped_run.trigger,
            "rows_so_far": holder.rows,
        }
        alert = Alert.new(AlertKind.STUCK, job, holder.id, message, stack.clock(), details)
        return notify(stack, job, alert, record_on=skipped_run.id)
    except Exception:
        log.warning("job %s: the stuck check failed", job_id, exc_info=True)
        return None


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if seconds < 90:
        return f"{round(seconds)} s"
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


HISTORY_RUNS = 10  # the succeeded runs a run's rows are compared with
MIN_HISTORY = 5  # fewer than this: no comparison yet
FACTOR = 10  # unusual: below median / FACTOR, or above median * FACTOR


@dataclass(frozen=True)
class RowCheck:
    rows: int
    median: float
    compared: int  # how many runs the median is of
    low: float
    high: float

    @property
    def direction(self) -> str | None:
        """ "fewer" or "more" when the rows are unusual; None when they are not."""
        if self.rows < self.low:
            return "fewer"
        if self.rows > self.high:
            return "more"
        return None


def row_check(rows: int, earlier: list[int]) -> RowCheck | None:
    """`rows` against the median of the first HISTORY_RUNS of `earlier` (newest first) that loaded
    any; None while fewer than MIN_HISTORY of them exist."""
    recent = [r for r in earlier if r > 0][:HISTORY_RUNS]
    if len(recent) < MIN_HISTORY:
        return None
    median = float(statistics.median(recent))
    return RowCheck(rows, median, len(recent), median / FACTOR, median * FACTOR)


def succeeded(stack: Stack, job_id: str, run: Run) -> AlertSent | None:
    """A succeeded run: an unusual_rows alert when its rows are far from its predecessors'. Never raises."""
    try:
        job = _job(stack, job_id)
        if job is None:
            return None
        if run.rows == 0 and job.load_type is LoadType.TRANSACTIONAL:
            return None  # nothing new in the window: normal for a job run often
        earlier = [
            r
            for r in list_runs(stack, job.id)
            if r.id != run.id
            and r.status is RunStatus.SUCCEEDED
            and r.started_at <= run.started_at
            and r.trigger not in CHECK_TRIGGERS
        ]
        check = row_check(run.rows, [r.rows for r in earlier])
        if check is None or check.direction is None:
            return None
        checked = [r for r in earlier if r.rows > 0 or job.load_type is LoadType.CATALOG]
        message = (
            f"Run {run.id} loaded {run.rows:,} rows, far {check.direction} than the median of {check.median:,.0f} "
            f"over the job's last {check.compared} successful runs (usual: {check.low:,.0f} to {check.high:,.0f})."
        )
        details = {
            "rows": run.rows,
            "median": check.median,
            "runs_compared": check.compared,
            "low": check.low,
            "high": check.high,
            "direction": check.direction,
            "load_type": job.load_type.value,
        }
        alert = Alert.new(AlertKind.UNUSUAL_ROWS, job, run.id, message, stack.clock(), details)
        if not claim(stack, job.id, alert.kind, _key(alert)):
            return None
        return deliver(stack, job, alert, record_on=run.id, repeat_of=_same_level(checked[0], run.rows))
    except Exception:
        log.warning("job %s: the row-count check of run %s failed", job_id, run.id, exc_info=True)
        return None


def _same_level(previous: Run, rows: int) -> str | None:
    """The previous run, when it was alerted as unusual and this one loaded about as many rows:
    the job's new level, already told."""
    told = any(a.kind == AlertKind.UNUSUAL_ROWS and a.delivered for a in previous.alerts)
    return previous.id if told and previous.rows / FACTOR <= rows <= previous.rows * FACTOR else None


def _job(stack: Stack, job_id: str) -> Job | None:
    doc = stack.store.get(COLLECTION, job_id)
    return None if doc is None else Job.from_doc(doc)


# --- A job's own channels --------------------------------------------------------------------------


def webhook_secret_name(job_id: str) -> str:
    return f"{WEBHOOK_SECRET_PREFIX}webhook-{job_id}"


@dataclass(frozen=True)
class ChannelUpdate:
    """What a request asks of a job's own channels: None leaves one as it is, "" removes it."""

    webhook_url: str | None = None
    topic: str | None = None

    @property
    def empty(self) -> bool:
        return self.webhook_url is None and self.topic is None


def read_channels(body: object, field: str = "alerts") -> ChannelUpdate:
    """A request's `alerts` object, {webhook_url?, topic?}, checked (InvalidInput names the field).
    A key left out keeps what the job has; null or "" removes it."""
    if body is None:
        return ChannelUpdate()
    if not isinstance(body, dict):
        raise InvalidInput(field, "an object {webhook_url?, topic?}")
    unknown = sorted(set(body) - {"webhook_url", "topic"})
    if unknown:
        raise InvalidInput(f"{field}.{unknown[0]}", "not a field of alerts (webhook_url, topic)")
    values: dict[str, str | None] = {}
    for name in ("webhook_url", "topic"):
        if name not in body:
            values[name] = None
            continue
        value = body[name]
        if value is None or value == "":
            values[name] = ""
            continue
        if not isinstance(value, str) or len(value) > 2048:
            raise InvalidInput(f"{field}.{name}", "a string of at most 2,048 characters")
        problem = webhook_problem(value) if name == "webhook_url" else topic_problem(value)
        if problem:
            raise InvalidInput(f"{field}.{name}", problem)
        values[name] = value
    return ChannelUpdate(values["webhook_url"], values["topic"])


def apply_channels(stack: Stack, job_id: str, update: ChannelUpdate) -> Job:
    """Store the job's channels: the webhook's URL in the secret store, its host and the topic in
    the job's document."""
    if update.webhook_url:
        stack.secrets.put(webhook_secret_name(job_id), update.webhook_url)
    elif update.webhook_url == "":
        stack.secrets.delete(webhook_secret_name(job_id))

    def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        job = Job.from_doc(doc)
        host = job.alerts.webhook_host
        if update.webhook_url is not None:
            host = urlsplit(update.webhook_url).hostname if update.webhook_url else None
        topic = job.alerts.topic if update.topic is None else (update.topic or None)
        return replace(job, alerts=AlertChannels(host, topic), updated_at=stack.clock()).to_doc()

    changed = stack.store.transact(COLLECTION, job_id, change)
    if changed is None:
        raise NotFound(f"job {job_id} does not exist")
    return Job.from_doc(changed)


def forget_channels(stack: Stack, job_id: str) -> None:
    """A job deleted: its webhook's URL leaves the secret store too."""
    stack.secrets.delete(webhook_secret_name(job_id))
