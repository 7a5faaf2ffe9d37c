"""run_job served as Cloud Run serves it (functions-framework's own server, gunicorn), told to stop
(SIGTERM) in the middle of a run: the run stops within seconds, is recorded interrupted, its job
is free, and the message is not acknowledged, so Pub/Sub delivers it again."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from etlwizard.emulator import free_port
from etlwizard.jobs import get_job

MAIN = str(Path(__file__).parents[2] / "functions" / "main.py")


def pubsub_event(job_id):
    data = base64.b64encode(json.dumps({"job_id": job_id, "trigger": "manual"}).encode()).decode()
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub/test",
            "specversion": "1.0",
            "id": "1",
        },
        {"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/run-job"},
    )
    return to_structured(event)


def test_sigterm_interrupts_the_run_and_leaves_the_message_unacknowledged(
    client, stack, settings, pg, big_table, dataset, tmp_path
):
    job = client.post(
        "/api/etl/jobs/",
        json={
            "name": "big",
            "connection_id": pg,
            "schema_name": "public",
            "table_name": big_table,
            "selected_columns": ["id", "note", "at"],
            "load_type": "catalog",
            "destination": {"mode": "new", "dataset": dataset, "table": "big"},
        },
    ).get_json()["job"]
    port = free_port()
    env = {
        **os.environ,
        "ETL_STACK": "embedded",
        "ETL_PROJECT": settings.project,
        "ETL_BIGQUERY_ENDPOINT": settings.bigquery_endpoint,
        "ETL_DATA_DIR": str(settings.data_dir),
        "ETL_CHUNK_ROWS": "20000",
        "ETL_LOADS_IN_FLIGHT": "1",
    }
    with open(tmp_path / "function.log", "wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "functions-framework"),
                "--target",
                "run_job",
                "--source",
                MAIN,
                "--signature-type",
                "cloudevent",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        answers = []
        headers, body = pubsub_event(job["id"])
        delivery = threading.Thread(
            target=lambda: answers.append(requests.post(url, headers=headers, data=body, timeout=60).status_code)
        )
        delivery.start()
        for _ in range(300):
            runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
            if runs:
                break
            time.sleep(0.1)
        assert [r["status"] for r in runs] == ["running"]
        time.sleep(0.5)

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert time.monotonic() - started < 10
        delivery.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    (run,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert run["status"] == "interrupted", run
    assert get_job(stack, job["id"]).lease is None
    assert answers == [500]  # not acknowledged: Pub/Sub delivers the message again
    assert stack.warehouse.staging_tables(dataset) == []
