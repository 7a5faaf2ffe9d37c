"""Log lines as Cloud Logging reads them: on the gcp format every line a process writes during real
runs is one JSON object (severity, message, the run's labels, its numbers); locally, text."""

import base64
import io
import json
import logging
import re
import uuid
from dataclasses import replace
from pathlib import Path

import functions_framework
import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from etlwizard.errors import EtlError
from etlwizard.logs import FAILED_RUN_EVENT, configure_logging
from tests.integration.loading import ago, make_job, run

MAIN = str(Path(__file__).parents[2] / "functions" / "main.py")
SEVERITIES = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
LABELS = "logging.googleapis.com/labels"
DIAGNOSTIC = "logging.googleapis.com/diagnostic"  # google-cloud-logging's first line: its own version


@pytest.fixture
def root_logger():
    """The root logger's handlers and level, as they were before the test, after it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def entries(text):
    """Every line as JSON (a line that is not fails the test), each with a severity and a message."""
    parsed = [json.loads(line) for line in text.splitlines()]
    for entry in parsed:
        assert entry["severity"] in SEVERITIES, entry
        assert isinstance(entry.get("message"), str) or DIAGNOSTIC in entry, entry
        assert all(isinstance(v, str) for v in entry[LABELS].values()), entry  # Cloud Logging's labels are strings
    return parsed


def of_run(parsed, run_id):
    return [e for e in parsed if e[LABELS].get("run_id") == run_id]


def test_every_line_of_a_run_is_a_json_entry_with_the_runs_labels(
    root_logger, client, make_stack, pg, pg_sql, table, dataset
):
    out = io.StringIO()
    stack = make_stack(log_format="json")
    configure_logging(stack.settings, stream=out)
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}'), (2, 'b', 2, '{ago(50)}')")
    job = make_job(client, pg, table, dataset)
    done = run(stack, job["id"])

    parsed = entries(out.getvalue())
    lines = of_run(parsed, done["id"])
    assert lines, parsed
    for entry in lines:
        assert {k: entry[LABELS][k] for k in ("job_id", "run_id", "trigger")} == {
            "job_id": job["id"],
            "run_id": done["id"],
            "trigger": "manual",
        }
    [finished] = [e for e in lines if e.get("event") == "run_succeeded"]
    assert finished["severity"] == "INFO"
    assert finished["message"] == (
        f"job {job['id']} run {done['id']}: succeeded, 2 rows, {done['bytes']} bytes in {done['duration_seconds']} s"
    )
    assert (finished["rows"], finished["bytes"], finished["duration_seconds"]) == (
        2,
        done["bytes"],
        done["duration_seconds"],
    )
    assert finished["logging.googleapis.com/sourceLocation"]["function"] == "_finished"

    # a run that fails: the one line the failed-runs metric counts (infra/), with the run's labels
    name = f"gone_{uuid.uuid4().hex[:8]}"
    pg_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount numeric, updated_at timestamptz NOT NULL)")
    failing = make_job(client, pg, name, dataset, destination={"mode": "new", "dataset": dataset, "table": "gone"})
    pg_sql(f"DROP TABLE {name}")
    with pytest.raises(EtlError):
        run(stack, failing["id"])
    (failed,) = client.get(f"/api/etl/jobs/{failing['id']}/runs/").get_json()["runs"]
    parsed = entries(out.getvalue())
    [line] = [e for e in parsed if e.get("event") == FAILED_RUN_EVENT]
    assert line["severity"] == "WARNING"
    assert line["message"] == f"job {failing['id']} run {failed['id']} failed: {failed['error']}"
    assert line["error"] == failed["error"] and line["rows"] == 0
    assert {k: line[LABELS][k] for k in ("job_id", "run_id", "trigger")} == {
        "job_id": failing["id"],
        "run_id": failed["id"],
        "trigger": "manual",
    }


def cloud_event(job_id):
    data = base64.b64encode(json.dumps({"job_id": job_id, "trigger": "schedule"}).encode()).decode()
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/test", "specversion": "1.0"},
        {"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/run-job"},
    )
    return to_structured(event)


def test_the_run_job_function_on_the_gcp_format_writes_only_json_to_stdout(
    root_logger, function_env, monkeypatch, capsys, client, pg, pg_sql, table, dataset
):
    """As deployed: run_job sets logging up from its environment (ETL_STACK=gcp makes it JSON; here
    the embedded stack with ETL_LOG_FORMAT=json) and Cloud Run reads its stdout line by line."""
    monkeypatch.setenv("ETL_LOG_FORMAT", "json")
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    function = functions_framework.create_app("run_job", MAIN, "cloudevent").test_client()
    capsys.readouterr()
    headers, body = cloud_event(job["id"])
    assert function.post("/", headers=headers, data=body).status_code == 200
    headers, body = cloud_event("0123456789ab")  # no such job: terminal, acknowledged and logged
    assert function.post("/", headers=headers, data=body).status_code == 200

    captured = capsys.readouterr()
    parsed = entries(captured.out)
    (done,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert done["status"] == "succeeded"
    [finished] = [e for e in of_run(parsed, done["id"]) if e.get("event") == "run_succeeded"]
    assert finished[LABELS]["trigger"] == "schedule" and finished["rows"] == 1
    [acknowledged] = [e for e in parsed if "acknowledged after a terminal error" in e["message"]]
    assert acknowledged["severity"] == "WARNING" and "job 0123456789ab does not exist" in acknowledged["message"]
    assert not re.search(r"^\d{4}-\d\d-\d\d .* (INFO|WARNING) ", captured.out + captured.err, re.M)  # no text lines


def test_locally_lines_stay_readable_text(root_logger, client, stack, pg, pg_sql, table, dataset):
    assert not stack.settings.logs_as_json  # the embedded stack's default
    assert replace(stack.settings, stack="gcp").logs_as_json
    out = io.StringIO()
    configure_logging(stack.settings, stream=out)
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    done = run(stack, job["id"])
    pattern = (
        rf"^\d{{4}}-\d\d-\d\d [\d:,]+ INFO etlwizard\.run\.engine: job {job['id']} run {done['id']}: succeeded, 1 rows"
    )
    assert re.search(pattern, out.getvalue(), re.M), out.getvalue()
    assert not any(line.startswith("{") for line in out.getvalue().splitlines())
    # configured again (another entry point): still one handler, no line written twice
    configure_logging(stack.settings, stream=out)
    configure_logging(stack.settings, stream=out)
    logging.getLogger("etlwizard.test").info("once")
    assert out.getvalue().count("etlwizard.test: once") == 1
