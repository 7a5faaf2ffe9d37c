"""Verification on a schedule of its own (issue 15): a job's checks.verify_schedule, shaped as its
`schedule`, is a second scheduler entry (<job id>-verify) whose message has the trigger "verify";
the engine answers it with a verification of all committed history, recorded as a run with that
trigger, a mismatch alerted. Pausing the job pauses it, deleting the job removes it; a bad one is a
400 naming the field. The embedded stack's LocalScheduler fired at chosen times; Cloud Scheduler
against the gRPC double of test_cloud_adapters.py."""

import json
from concurrent import futures
from datetime import timedelta

import grpc
import pytest
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport

from etlwizard.run.engine import handle_message
from etlwizard.run.state import RunMessage
from etlwizard.schedulers import CloudScheduler
from etlwizard.scheduling import Schedule
from tests.integration.loading import make_job, run
from tests.integration.test_cloud_adapters import SchedulerDouble
from web.app import create_app

HOURLY_VERIFY = {"type": "hourly", "time": "20", "timezone": "UTC"}


@pytest.fixture
def stack(make_stack, tls_certificates):
    """The test's stack, trusting the tests' CA for a job's own webhook (a local HTTPS receiver)."""
    return make_stack(alert_ca_file=tls_certificates.ca.cert_path, alert_timeout=1)


@pytest.fixture
def cloud_scheduler():
    """Cloud Scheduler's gRPC double (test_cloud_adapters.py) and a CloudScheduler talking to it."""
    double = SchedulerDouble()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((double.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = scheduler_v1.CloudSchedulerClient(
        transport=CloudSchedulerGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{port}"))
    )
    yield double, CloudScheduler("my-project", "europe-west1", "etl-run-job", client=client)
    server.stop(None)


def history(client, job_id):
    return client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]


def job_of(client, job_id):
    response = client.get(f"/api/etl/jobs/{job_id}/")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["job"]


def later(stack, hours=2):
    return stack.clock() + timedelta(hours=hours)


def refused(response, field, words=""):
    payload = response.get_json()
    assert response.status_code == 400, payload
    assert payload["details"][0]["field"] == field, payload
    assert words in payload["message"], payload
    return payload


def test_a_verify_schedule_verifies_alerts_a_mismatch_and_repairs_when_the_job_says_so(
    client, stack, pg, events, dataset, receiver
):
    job = make_job(
        client,
        pg,
        events,
        dataset,
        primary_key=["id"],
        alerts={"webhook_url": receiver.url()},
        checks={"verify_schedule": HOURLY_VERIFY},
    )
    shown = job["checks"]["verify_schedule"]
    assert (
        shown
        == Schedule.from_payload(HOURLY_VERIFY).to_dict()
        == job_of(client, job["id"])["checks"]["verify_schedule"]
    )
    entry = stack.store.get("schedules", f"{job['id']}-verify")
    assert (entry["job_id"], entry["trigger"], entry["paused"], entry["schedule"]) == (
        job["id"],
        "verify",
        False,
        shown,
    )
    assert stack.store.get("schedules", job["id"]) is None  # its loads are manual: no entry for them

    run(stack, job["id"])  # the load, verified after it
    stack.warehouse.query(f"DELETE FROM {stack.warehouse.quoted(dataset, 'events')} WHERE id = 5")

    before = len(history(client, job["id"]))
    assert stack.scheduler.fire_due(now=later(stack)) == [f"{job['id']}-verify"]
    assert stack.publisher.drain()

    runs = history(client, job["id"])
    assert len(runs) == before + 1
    newest = runs[0]
    assert (newest["trigger"], newest["status"], newest["rows"]) == ("verify", "succeeded", 0)
    found = newest["verification"]
    assert found["status"] == "mismatched" and found["rows"] == 300
    assert [(m["bucket"], m["source_rows"], m["destination_rows"]) for m in found["mismatched"]] == [
        ("2024-05-01", 30, 29)
    ]
    assert "repaired" not in found  # the job does not repair
    assert [a["kind"] for a in newest["alerts"]] == ["mismatch"]
    sent = receiver.bodies()[-1]
    assert (sent["kind"], sent["run_id"]) == ("mismatch", newest["id"])
    shown = job_of(client, job["id"])
    assert shown["health"]["status"] == "mismatch"
    assert shown["last_run"]["trigger"] == "manual"  # a check is not the job's last load

    # the job repairs: the next scheduled verification puts the row back
    patched = client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"repair": True}})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["job"]["checks"]["verify_schedule"] == Schedule.from_payload(HOURLY_VERIFY).to_dict()
    done = handle_message(stack, RunMessage(job["id"], "verify").to_bytes())  # as Pub/Sub delivers it
    assert done is not None and done.trigger == "verify"
    repaired = history(client, job["id"])[0]
    assert repaired["id"] == done.id
    assert repaired["verification"]["status"] == "mismatched"
    assert repaired["verification"]["repaired"]["status"] == "matched"
    ids = {r[0] for r in stack.warehouse.query(f"SELECT id FROM {stack.warehouse.quoted(dataset, 'events')}")}
    assert ids == set(range(1, 301))
    assert job_of(client, job["id"])["health"]["status"] == "ok"


def test_pausing_stops_it_editing_moves_it_and_deleting_removes_it(client, stack, pg, events, dataset):
    job = make_job(
        client,
        pg,
        events,
        dataset,
        schedule={"type": "daily", "time": "02:30", "timezone": "Europe/Berlin"},
        checks={"verify_schedule": HOURLY_VERIFY},
    )
    key = f"{job['id']}-verify"
    assert stack.store.get("schedules", job["id"])["paused"] is False
    assert stack.store.get("schedules", key)["paused"] is False

    paused = client.post(f"/api/etl/jobs/{job['id']}/pause/")
    assert paused.status_code == 200, paused.get_json()
    assert stack.store.get("schedules", job["id"])["paused"] is True
    assert stack.store.get("schedules", key)["paused"] is True
    assert stack.scheduler.fire_due(now=later(stack, 30)) == []  # neither fires
    # a message the scheduler sent just before the pause is no check either
    assert handle_message(stack, RunMessage(job["id"], "verify").to_bytes()) is None
    assert history(client, job["id"]) == []

    # edited while paused: the new entry is paused too
    daily = {"type": "daily", "time": "05:00", "timezone": "Europe/Berlin"}
    edited = client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"verify_schedule": daily}})
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["job"]["checks"]["verify_schedule"] == Schedule.from_payload(daily).to_dict()
    entry = stack.store.get("schedules", key)
    assert (entry["paused"], entry["schedule"]["time"], entry["trigger"]) == (True, "05:00", "verify")

    resumed = client.post(f"/api/etl/jobs/{job['id']}/resume/")
    assert resumed.status_code == 200
    assert stack.store.get("schedules", key)["paused"] is False
    assert stack.store.get("schedules", job["id"])["paused"] is False
    fired = stack.scheduler.fire_due(now=later(stack, 25))
    assert sorted(fired) == sorted([job["id"], key])  # both: the load's and the verification's
    assert stack.publisher.drain()
    assert sorted(r["trigger"] for r in history(client, job["id"])) == ["schedule", "verify"]

    # null removes it (a manual one too); the job's own entry stays
    removed = client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"verify_schedule": None}})
    assert removed.status_code == 200 and "verify_schedule" not in removed.get_json()["job"]["checks"]
    assert stack.store.get("schedules", key) is None and stack.store.get("schedules", job["id"]) is not None
    assert handle_message(stack, RunMessage(job["id"], "verify").to_bytes()) is None  # no schedule: no check
    client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"verify_schedule": HOURLY_VERIFY}})
    assert stack.store.get("schedules", key)["paused"] is False
    manual = client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"verify_schedule": {"type": "manual"}}})
    assert "verify_schedule" not in manual.get_json()["job"]["checks"]
    assert stack.store.get("schedules", key) is None

    client.patch(f"/api/etl/jobs/{job['id']}/", json={"checks": {"verify_schedule": HOURLY_VERIFY}})
    assert client.delete(f"/api/etl/jobs/{job['id']}/").status_code == 200
    assert stack.store.get("schedules", key) is None and stack.store.get("schedules", job["id"]) is None


@pytest.mark.parametrize(
    ("verify_schedule", "field", "words"),
    [
        ("hourly", "checks.verify_schedule", "must be an object"),
        ({"type": "sometimes"}, "checks.verify_schedule.type", "must be one of"),
        ({"type": "cron", "cron": "61 * * * *"}, "checks.verify_schedule.cron", "five-field unix cron"),
        ({"type": "daily", "time": "02:30", "timezone": "Mars/Olympus"}, "checks.verify_schedule.timezone", "IANA"),
        ({"type": "daily", "time": "25:00"}, "checks.verify_schedule.time", "HH:MM"),
        ({"type": "weekly", "time": "02:30", "day_of_week": "someday"}, "checks.verify_schedule.day_of_week", "mon"),
        ({"type": "monthly", "time": "02:30", "day_of_month": 32}, "checks.verify_schedule.day_of_month", "1 to 31"),
    ],
)
def test_a_bad_verify_schedule_is_400_naming_the_field(
    client, stack, pg, table, dataset, verify_schedule, field, words
):
    body = {
        "name": "events",
        "connection_id": pg,
        "schema_name": "public",
        "table_name": table,
        "selected_columns": ["id", "note", "amount", "updated_at"],
        "load_type": "transactional",
        "timestamp_column": "updated_at",
        "destination": {"mode": "new", "dataset": dataset, "table": "events"},
        "checks": {"verify_schedule": verify_schedule},
    }
    refused(client.post("/api/etl/jobs/", json=body), field, words)
    assert client.get("/api/etl/jobs/").get_json()["jobs"] == []  # nothing created

    job = make_job(client, pg, table, dataset, checks={"verify_schedule": HOURLY_VERIFY})
    patch = {"name": "renamed", "checks": {"verify_schedule": verify_schedule}}
    refused(client.patch(f"/api/etl/jobs/{job['id']}/", json=patch), field, words)
    kept = job_of(client, job["id"])  # a refused edit changes nothing
    assert (kept["name"], kept["checks"]["verify_schedule"]["type"]) == ("events", "hourly")
    assert stack.store.get("schedules", f"{job['id']}-verify")["schedule"]["type"] == "hourly"


def test_cloud_scheduler_gets_a_second_job_with_the_verify_message(cloud_scheduler):
    double, scheduler = cloud_scheduler
    name = "projects/my-project/locations/europe-west1/jobs/etl-abc123-verify"
    scheduler.upsert("abc123", Schedule(type="daily", time="01:00", timezone="UTC"))
    scheduler.upsert(
        "abc123", Schedule(type="weekly", time="06:15", day_of_week="sun", timezone="Europe/Berlin"), trigger="verify"
    )

    (update_name, _), (create_name, create) = double.requests[2:]
    assert (update_name, create_name) == ("UpdateJob", "CreateJob")
    assert create.parent == "projects/my-project/locations/europe-west1"
    assert create.job.name == name
    assert create.job.schedule == "15 6 * * 0"
    assert create.job.time_zone == "Europe/Berlin"
    assert create.job.pubsub_target.topic_name == "projects/my-project/topics/etl-run-job"
    assert json.loads(create.job.pubsub_target.data) == {"job_id": "abc123", "trigger": "verify"}
    assert dict(create.job.pubsub_target.attributes) == {"job_id": "abc123"}
    assert set(double.jobs) == {name, "projects/my-project/locations/europe-west1/jobs/etl-abc123"}

    scheduler.upsert("abc123", Schedule(type="hourly", time="5"), paused=True, trigger="verify")
    assert [n for n, _ in double.requests[4:]] == ["UpdateJob", "PauseJob"]
    assert double.requests[-1][1].name == name
    assert double.jobs[name].schedule == "5 * * * *"
    assert double.jobs[name].state == scheduler_v1.Job.State.PAUSED
    scheduler.resume("abc123", trigger="verify")
    assert double.jobs[name].state == scheduler_v1.Job.State.ENABLED
    scheduler.delete("abc123", trigger="verify")
    assert set(double.jobs) == {"projects/my-project/locations/europe-west1/jobs/etl-abc123"}  # its loads' stays
    scheduler.upsert("abc123", Schedule(type="manual"), trigger="verify")  # none: no scheduler job
    assert double.requests[-1][0] == "DeleteJob" and name not in double.jobs


def test_the_job_service_keeps_both_cloud_scheduler_jobs(
    make_stack,
    cloud_scheduler,
    pg,
    table,
    dataset,
):
    double, scheduler = cloud_scheduler
    cloud = create_app(stack=make_stack(parts={"scheduler": scheduler}))
    cloud.testing = True
    client = cloud.test_client()
    job = make_job(
        client,
        pg,
        table,
        dataset,
        schedule={"type": "daily", "time": "02:30", "timezone": "Europe/Berlin"},
        checks={"verify_schedule": {"type": "weekly", "time": "04:00", "day_of_week": "sat"}},
    )
    loads = f"projects/my-project/locations/europe-west1/jobs/etl-{job['id']}"
    verifies = f"{loads}-verify"
    assert set(double.jobs) == {loads, verifies}
    assert json.loads(double.jobs[verifies].pubsub_target.data) == {"job_id": job["id"], "trigger": "verify"}
    assert json.loads(double.jobs[loads].pubsub_target.data) == {"job_id": job["id"], "trigger": "schedule"}
    assert double.jobs[verifies].schedule == "0 4 * * 6"

    assert client.post(f"/api/etl/jobs/{job['id']}/pause/").status_code == 200
    assert {n: j.state for n, j in double.jobs.items()} == {
        loads: scheduler_v1.Job.State.PAUSED,
        verifies: scheduler_v1.Job.State.PAUSED,
    }
    assert client.post(f"/api/etl/jobs/{job['id']}/resume/").status_code == 200
    assert {j.state for j in double.jobs.values()} == {scheduler_v1.Job.State.ENABLED}

    assert client.delete(f"/api/etl/jobs/{job['id']}/").status_code == 200
    assert double.jobs == {}
