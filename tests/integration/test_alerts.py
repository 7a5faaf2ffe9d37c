"""Alerts end to end: real runs (PostgreSQL, the BigQuery emulator, the embedded job store) tell a
local HTTPS webhook receiver (http.server behind TLS, its certificate signed by the tests' own CA)
and the Pub/Sub emulator when a run fails, a job is stuck, verification finds a mismatch, or a run
loads an unusual number of rows; each event once. A receiver that answers 500 or never answers
fails no run: the run history records the delivery as failed, and why."""

import json
import ssl
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from etlwizard.alerts import (
    Alert,
    AlertKind,
    apply_channels,
    channels,
    notify,
    read_channels,
    webhook_secret_name,
)
from etlwizard.errors import EtlError, InvalidInput
from etlwizard.jobs import get_job
from etlwizard.run.engine import run_job
from etlwizard.run.records import get_run, save_run
from etlwizard.run.state import Run, RunStatus
from tests.integration.loading import ago, make_job, run
from web.app import create_app

TOKEN = "XyZ-secret-token-0123456789"  # what a Slack webhook URL ends with: it must never show


class WebhookReceiver:
    """An HTTPS server on 127.0.0.1 that keeps every POST: answering 200, `status`, or nothing for
    `delay` seconds (a receiver that hangs)."""

    def __init__(self, certificates, status=200, delay=0.0):
        self.received: list[tuple[str, dict, dict]] = []  # path, headers, JSON body
        self.status, self.delay = status, delay
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.server.cert_path, certificates.server.key_path)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, dict(self.headers), json.loads(body)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b"ok" if receiver.status == 200 else b"boom: no_service"
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # a client that stopped waiting (ssl.SSLError is an OSError)
                    pass

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):  # the handshake happens in the handler's thread, on first read
                sock, address = super().get_request()
                return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, token=TOKEN):
        return f"https://127.0.0.1:{self.server.server_port}/services/T0001/B0002/{token}"

    def bodies(self):
        return [body for _, _, body in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers(tls_certificates):
    """receivers(status=200, delay=0): a new WebhookReceiver, closed after the test."""
    made = []

    def make(**kwargs):
        made.append(WebhookReceiver(tls_certificates, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def alerting(make_stack, tls_certificates):
    """alerting(webhook_url, **settings): a stack whose default webhook is `webhook_url`, trusting
    the tests' CA, each webhook attempt waiting 1 s."""

    def make(webhook_url=None, **changes):
        return make_stack(
            alert_webhook=webhook_url, alert_ca_file=tls_certificates.ca.cert_path, alert_timeout=1, **changes
        )

    return make


@pytest.fixture
def topic(pubsub_emulator, settings):
    """A topic of this test's own in the Pub/Sub emulator, and pull(n): the next n messages on it."""
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    path = publisher.topic_path(settings.project, name)
    subscription = subscriber.subscription_path(settings.project, name)
    publisher.create_topic(name=path)
    subscriber.create_subscription(name=subscription, topic=path)

    def pull(expected, wait=20.0):
        """The messages that arrive within `wait` seconds, until `expected` have."""
        got, deadline = [], time.monotonic() + wait
        while len(got) < expected and time.monotonic() < deadline:
            try:
                response = subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
            except exceptions.DeadlineExceeded:
                continue
            if response.received_messages:
                subscriber.acknowledge(
                    subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
                )
            got += [m.message for m in response.received_messages]
        return got

    yield name, path, pull
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=path)


def gone_table_job(client, pg, pg_sql, dataset):
    """A job whose source table was dropped after it was made: its runs fail."""
    name = f"gone_{uuid.uuid4().hex[:8]}"
    pg_sql(
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount numeric(12,2), updated_at timestamptz NOT NULL)"
    )
    job = make_job(client, pg, name, dataset)
    pg_sql(f"DROP TABLE {name}")
    return job, name


def history(client, job_id):
    return client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]


def job_store_text(settings):
    return (settings.data_dir / "jobs.sqlite3").read_bytes().decode("utf-8", "replace")


def test_a_failed_run_is_alerted_once_to_the_webhook_and_the_topic(
    client, alerting, receivers, topic, pg, pg_sql, dataset, settings, caplog
):
    receiver = receivers()
    topic_name, topic_path, pull = topic
    job, table = gone_table_job(client, pg, pg_sql, dataset)
    stack = alerting(receiver.url(), alert_topic=topic_name)

    with pytest.raises(EtlError):
        run(stack, job["id"])
    (failed,) = history(client, job["id"])
    error = f"table public.{table} does not exist in connection 'pg'"
    assert (failed["status"], failed["error"]) == ("failed", error)  # the run's own failure, as before

    # the webhook: Slack's message, and the event's fields beside it
    [(path, headers, body)] = receiver.received
    assert path == f"/services/T0001/B0002/{TOKEN}" and headers["Content-Type"].startswith("application/json")
    assert body["text"] == f":red_circle: Job events: run {failed['id']} failed: {error}"
    assert body["blocks"][0]["text"] == {"type": "mrkdwn", "text": body["text"]}
    assert {k: body[k] for k in ("version", "kind", "job_id", "job_name", "run_id", "message")} == {
        "version": 1,
        "kind": "run_failed",
        "job_id": job["id"],
        "job_name": "events",
        "run_id": failed["id"],
        "message": error,
    }
    assert body["details"]["error"] == error and body["details"]["trigger"] == "manual"

    # Pub/Sub: one JSON message, attributes kind and job_id
    [message] = pull(1)
    assert dict(message.attributes) == {"kind": "run_failed", "job_id": job["id"]}
    assert json.loads(message.data) == {k: v for k, v in body.items() if k not in ("text", "blocks")}

    # the run history says where it went, the webhook by its host only
    [sent] = failed["alerts"]
    assert (sent["kind"], sent["message"]) == ("run_failed", error)
    assert sorted(sent["deliveries"], key=lambda d: d["channel"]) == [
        {"channel": "pubsub", "target": topic_path, "ok": True, "attempts": 1, "error": None},
        {"channel": "webhook", "target": "127.0.0.1", "ok": True, "attempts": 1, "error": None},
    ]

    # the same failure again (as Pub/Sub's redelivery of a transient one would run): not sent again
    with pytest.raises(EtlError):
        run(stack, job["id"])
    again, _ = history(client, job["id"])
    assert again["status"] == "failed" and again["id"] != failed["id"]
    assert again["alerts"] == [
        {
            "kind": "run_failed",
            "at": again["alerts"][0]["at"],
            "message": error,
            "deliveries": [],
            "repeat_of": failed["id"],
        }
    ]
    assert len(receiver.received) == 1 and pull(1, wait=3) == []

    # the webhook's token is nowhere: not in the log, the job store or the API's answers
    for text in (caplog.text, job_store_text(settings), json.dumps(history(client, job["id"]))):
        assert TOKEN not in text


def test_a_run_failing_in_two_chunks_is_alerted_once(make_stack, alerting, receivers, postgres_db, pg_sql, dataset):
    receiver = receivers()
    name = f"chunks_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL)")
    try:
        pg_sql(f"INSERT INTO {name} SELECT g, 'n', now() - interval '1 day' FROM generate_series(1, 1000) g")
        pg_sql(f"UPDATE {name} SET updated_at = 'infinity' WHERE id IN (100, 900)")  # not a BigQuery timestamp
        stack = alerting(receiver.url(), fanout_rows=250)
        client = create_app(stack=stack).test_client()
        cid = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db}).get_json()
        job = make_job(
            client,
            cid["connection"]["id"],
            name,
            dataset,
            selected_columns=["id", "note", "updated_at"],
            load_type="catalog",
            timestamp_column=None,
        )
        assert len(run_job(stack, job["id"]).chunks) == 4
        stack.publisher.drain()
        (failed,) = history(client, job["id"])
        assert failed["status"] == "failed" and sum(c["status"] == "failed" for c in failed["chunks"]) == 2
        assert [b["kind"] for b in receiver.bodies()] == ["run_failed"]
        assert receiver.bodies()[0]["run_id"] == failed["id"]
        assert [a["kind"] for a in failed["alerts"]] == ["run_failed"]
    finally:
        pg_sql(f"DROP TABLE {name}")


def hold_lease(stack, job_id, started_minutes_ago, expires_in_minutes=1):
    """Another run holding the job: started that long ago, its lease still renewed."""
    holder = Run.new(job_id, "schedule", stack.clock() - timedelta(minutes=started_minutes_ago))
    save_run(stack, holder)
    expires = (stack.clock() + timedelta(minutes=expires_in_minutes)).isoformat()
    stack.store.transact("jobs", job_id, lambda j: {**j, "lease": {"run_id": holder.id, "expires_at": expires}})
    return holder


def test_a_stuck_job_is_alerted_once(client, alerting, receivers, topic, pg, pg_sql, table, dataset):
    receiver = receivers()
    topic_name, _, pull = topic
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    stack = alerting(receiver.url(), alert_topic=topic_name, lease_seconds=120)

    # a run going for a minute holds the lease: a skipped trigger, but not stuck (shorter than a lease)
    hold_lease(stack, job["id"], started_minutes_ago=1)
    assert run(stack, job["id"])["status"] == "skipped"
    assert receiver.received == []

    # one going for 10 minutes, still renewing its lease, is: alerted once, however often triggered
    holder = hold_lease(stack, job["id"], started_minutes_ago=10)
    first = run(stack, job["id"], trigger="manual")
    second = run(stack, job["id"], trigger="manual")
    assert (first["status"], second["status"]) == ("skipped", "skipped")
    [body] = receiver.bodies()
    assert (body["kind"], body["run_id"], body["job_id"]) == ("stuck", holder.id, job["id"])
    assert body["text"].startswith(":hourglass: Job events is stuck: Run ")
    assert body["details"]["skipped_run_id"] == first["id"] and body["details"]["stuck_run_id"] == holder.id
    assert body["details"]["held_seconds"] >= 600 and body["details"]["lease_seconds"] == 120
    assert "longer than a lease (120 s)" in body["message"]
    [message] = pull(1)
    assert dict(message.attributes) == {"kind": "stuck", "job_id": job["id"]}
    assert pull(1, wait=3) == []
    # recorded on the skipped run that noticed it; the stuck run's own document is its worker's
    assert [a["kind"] for a in first["alerts"]] == ["stuck"] and second["alerts"] == []
    assert get_run(stack, job["id"], holder.id).alerts == []
    assert get_job(stack, job["id"]).last_alerts == {"stuck": holder.id}


def test_a_mismatch_reported_by_verification_is_sent_once(
    client, alerting, receivers, topic, pg, pg_sql, table, dataset
):
    receiver = receivers()
    topic_name, _, pull = topic
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    stack = alerting(receiver.url(), alert_topic=topic_name)
    loaded = run(stack, job["id"])
    assert loaded["status"] == "succeeded" and receiver.received == []

    stored = get_job(stack, job["id"])
    details = {"verification_id": "v1", "mismatched": [{"bucket": "2026-11-02", "source": 10, "destination": 9}]}
    alert = Alert(
        kind="mismatch",
        job_id=stored.id,
        job_name=stored.name,
        run_id=loaded["id"],
        message="1 of 30 buckets differ: 2026-11-02 (10 rows at the source, 9 in BigQuery).",
        at=stack.clock().isoformat(),
        details=details,
    )
    sent = notify(stack, stored, alert)
    assert sent is not None and all(d.ok for d in sent.deliveries) and len(sent.deliveries) == 2
    assert notify(stack, stored, alert) is None  # the same verification's mismatch: once
    [body] = receiver.bodies()
    assert body["kind"] == "mismatch" and body["details"] == details and body["run_id"] == loaded["id"]
    assert body["text"] == f":warning: Job events: verification found a mismatch: {alert.message}"
    [message] = pull(1)
    assert dict(message.attributes) == {"kind": "mismatch", "job_id": job["id"]}
    assert json.loads(message.data)["details"] == details
    (shown,) = history(client, job["id"])
    assert [(a["kind"], a["message"]) for a in shown["alerts"]] == [("mismatch", alert.message)]
    # a later verification of the same run that finds a mismatch again is another event
    assert notify(stack, stored, replace(alert, details={**details, "verification_id": "v2"}))
    assert len(receiver.received) == 2


def test_a_receiver_answering_500_fails_no_run(client, alerting, receivers, pg, pg_sql, dataset):
    receiver = receivers(status=500)
    job, table = gone_table_job(client, pg, pg_sql, dataset)
    stack = alerting(receiver.url())
    started = time.monotonic()
    with pytest.raises(EtlError) as raised:
        run(stack, job["id"])
    assert time.monotonic() - started < 15  # three attempts, a second and two between them
    assert raised.value.message == f"table public.{table} does not exist in connection 'pg'"  # its own failure
    (failed,) = history(client, job["id"])
    assert failed["status"] == "failed" and failed["error"] == raised.value.message
    assert len(receiver.received) == 3  # tried three times: a 500 may pass
    assert receiver.bodies()[0] == receiver.bodies()[2]
    [sent] = failed["alerts"]
    assert sent["deliveries"] == [
        {
            "channel": "webhook",
            "target": "127.0.0.1",
            "ok": False,
            "attempts": 3,
            "error": "HTTP 500 Internal Server Error: boom: no_service",
        }
    ]
    assert get_job(stack, job["id"]).lease is None


def earlier_runs(stack, job_id, rows, count):
    """`count` succeeded runs of `rows` rows each, one a day before today: the job's history."""
    for day in range(count, 0, -1):
        at = stack.clock() - timedelta(days=day)
        done = Run.new(job_id, "schedule", at).finished(RunStatus.SUCCEEDED, at + timedelta(seconds=30))
        save_run(stack, replace(done, rows=rows))


def test_unusual_row_counts_are_alerted_once(client, alerting, receivers, pg, pg_sql, table, dataset):
    receiver = receivers()
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 3) g")
    job = make_job(client, pg, table, dataset, load_type="catalog", timestamp_column=None)
    stack = alerting(receiver.url())
    earlier_runs(stack, job["id"], rows=1000, count=4)

    first = run(stack, job["id"])  # 3 rows after 4 runs of 1,000: too little history to judge
    assert (first["status"], first["rows"], first["alerts"]) == ("succeeded", 3, [])
    second = run(stack, job["id"])  # 3 rows, the median of the last five 1,000: far fewer
    assert second["status"] == "succeeded"
    [body] = receiver.bodies()
    assert (body["kind"], body["run_id"]) == ("unusual_rows", second["id"])
    assert body["details"] == {
        "rows": 3,
        "median": 1000.0,
        "runs_compared": 5,
        "low": 100.0,
        "high": 10000.0,
        "direction": "fewer",
        "load_type": "catalog",
    }
    assert body["message"] == (
        f"Run {second['id']} loaded 3 rows, far fewer than the median of 1,000 over the job's last 5 "
        "successful runs (usual: 100 to 10,000)."
    )
    assert [a["kind"] for a in second["alerts"]] == ["unusual_rows"]
    third = run(stack, job["id"])  # still 3: the job's new level, already told
    assert [(a["kind"], a["repeat_of"], a["deliveries"]) for a in third["alerts"]] == [
        ("unusual_rows", second["id"], [])
    ]
    assert len(receiver.received) == 1


def test_a_receiver_that_never_answers_fails_no_run(client, alerting, receivers, pg, pg_sql, table, dataset):
    receiver = receivers(delay=5)  # longer than the 1 s each attempt waits
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 3) g")
    job = make_job(client, pg, table, dataset, load_type="catalog", timestamp_column=None)
    stack = alerting(receiver.url())
    earlier_runs(stack, job["id"], rows=500, count=5)
    started = time.monotonic()
    done = run(stack, job["id"])
    assert time.monotonic() - started < 30
    assert (done["status"], done["rows"]) == ("succeeded", 3)
    [sent] = done["alerts"]
    assert sent["kind"] == "unusual_rows" and sent["deliveries"] == [
        {"channel": "webhook", "target": "127.0.0.1", "ok": False, "attempts": 3, "error": "no answer within 1 s"}
    ]
    assert len(receiver.received) == 3
    assert get_job(stack, job["id"]).lease is None


def test_a_jobs_own_webhook_and_topic_add_to_the_defaults(
    client, alerting, receivers, topic, pg, pg_sql, dataset, settings
):
    default, own = receivers(), receivers()
    _, topic_path, pull = topic
    job, _ = gone_table_job(client, pg, pg_sql, dataset)
    stack = alerting(default.url())
    update = read_channels({"webhook_url": own.url("own-" + TOKEN), "topic": topic_path})
    changed = apply_channels(stack, job["id"], update)
    assert changed.alerts.webhook_host == "127.0.0.1" and changed.alerts.topic == topic_path
    shown = client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]
    assert shown["alerts"] == {"webhook_host": "127.0.0.1", "topic": topic_path}  # the URL stays a secret
    assert stack.secrets.get(webhook_secret_name(job["id"])) == own.url("own-" + TOKEN)
    assert TOKEN not in job_store_text(settings)

    with pytest.raises(EtlError):
        run(stack, job["id"])
    assert [b["kind"] for b in default.bodies()] == [b["kind"] for b in own.bodies()] == ["run_failed"]
    assert own.received[0][0].endswith("own-" + TOKEN)
    [message] = pull(1)
    assert dict(message.attributes)["kind"] == "run_failed"

    # the same address twice is one channel; "" removes one
    apply_channels(stack, job["id"], read_channels({"webhook_url": default.url(), "topic": ""}))
    stored = get_job(stack, job["id"])
    assert stored.alerts.topic is None
    assert [(c.channel, c.target) for c in channels(stack, stored)] == [("webhook", "127.0.0.1")]

    for bad, problem in (
        ({"webhook_url": "http://example.com/hook"}, "a webhook must be an https:// URL"),
        ({"webhook_url": "https://user:pw@example.com/hook"}, "a webhook URL carries no user name or password"),
        ({"topic": "goog-alerts"}, "a Pub/Sub topic name is 3 to 255"),
        ({"webhook": "https://example.com"}, "not a field of alerts"),
    ):
        with pytest.raises(InvalidInput) as refused:
            read_channels(bad)
        assert problem in refused.value.message, refused.value.message
        assert "example.com/hook" not in refused.value.message  # a URL is never echoed
    assert AlertKind("mismatch") is AlertKind.MISMATCH
