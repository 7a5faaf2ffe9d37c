"""The etl-wizard CLI end to end: its commands against the wizard served over HTTP by a real server
thread, on the embedded stack, loading from a real PostgreSQL database."""

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from etlwizard.cli import cli
from web.app import create_app

PASSWORD = "never-shown-7f3a9c"  # PostgreSQL trusts local connections: any password connects


@pytest.fixture
def server(stack):
    """The wizard on a free port; each request's Authorization header is recorded."""
    app = create_app(stack=stack)
    seen: list[str | None] = []

    def recording(environ, start_response):
        seen.append(environ.get("HTTP_AUTHORIZATION"))
        return app.wsgi_app(environ, start_response)

    http = make_server("127.0.0.1", 0, recording, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", seen
    http.shutdown()
    stack.publisher.drain()


@pytest.fixture
def etl(server, monkeypatch):
    """Runs `etl-wizard ARGS` against the server (ETL_WIZARD_URL, as a user would set it); every
    output is kept, to check that no password ever shows."""
    url, _ = server
    monkeypatch.setenv("ETL_WIZARD_URL", url)
    monkeypatch.delenv("ETL_WIZARD_TOKEN", raising=False)
    outputs: list[str] = []

    def run(*args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        outputs.append(result.stdout + result.stderr)
        return result

    yield run
    assert not any(PASSWORD in text for text in outputs)


def job_file(postgres_db, dataset: str, **job_changes) -> str:
    job = {
        "connection": "test pg",
        "schema_name": "public",
        "table_name": "composite_pk",
        "selected_columns": ["region", "order_no", "amount"],
        "load_type": "catalog",
        "destination": {"dataset": dataset, "table": "orders"},
        "schedule": {"type": "daily", "time": "02:00", "timezone": "Europe/Berlin"},
    } | job_changes
    return yaml.safe_dump(
        {
            "connections": {
                "test pg": {
                    "type": "postgresql",
                    "host": postgres_db["host"],
                    "port": postgres_db["port"],
                    "database": postgres_db["database"],
                    "user": postgres_db["user"],
                    "password_env": "TEST_PG_PASSWORD",
                }
            },
            "jobs": {"orders": job},
        },
        sort_keys=False,
    )


def test_apply_run_and_apply_again(etl, postgres_db, tmp_path, monkeypatch, client):
    monkeypatch.setenv("TEST_PG_PASSWORD", PASSWORD)
    dataset = f"cli_{uuid.uuid4().hex[:8]}"
    jobs_yaml = tmp_path / "jobs.yaml"
    jobs_yaml.write_text(job_file(postgres_db, dataset))

    created = etl("jobs", "apply", str(jobs_yaml))
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert lines[0].startswith("connection test pg: created (id ")
    assert lines[1].startswith("job orders: created (id ") and lines[1].endswith(f"into {dataset}.orders)")
    assert lines[2] == "Applied: 2 created, 0 updated, 0 unchanged, 0 not applied."

    run = etl("jobs", "run", "orders", "--wait", "--timeout", "120")
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith("Run ") and " succeeded: 2 rows in " in run.stdout

    table = etl("tables", "show", f"{dataset}.orders", "--rows", "5", "--json")
    rows = json.loads(table.stdout)["rows"]
    assert [(r["region"], r["order_no"]) for r in rows] == [("eu", 1), ("us", 2)]
    shown = etl("tables", "show", f"{dataset}.orders")
    assert shown.stdout.splitlines()[0] == f"{dataset}.orders: 2 rows"
    assert shown.stdout.splitlines()[1].split()[:3] == ["region", "order_no", "amount"]
    history = etl("runs", "list", "orders").stdout.splitlines()
    assert history[0].split()[:3] == ["STARTED", "TRIGGER", "STATUS"] and history[1].split()[1:4] == [
        "manual",
        "succeeded",
        "2",
    ]

    again = etl("jobs", "apply", str(jobs_yaml))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "connection test pg: no change",
        "job orders: no change",
        "Applied: 0 created, 0 updated, 2 unchanged, 0 not applied.",
    ]
    assert len(client.get("/api/connections/").get_json()["connections"]) == 1
    assert len(client.get("/api/etl/jobs/").get_json()["jobs"]) == 1

    jobs_yaml.write_text(
        job_file(postgres_db, dataset, schedule={"type": "weekly", "time": "03:30", "day_of_week": "Monday"})
    )
    dry = etl("jobs", "apply", "--dry-run", str(jobs_yaml))
    assert "job orders: would be updated (schedule)" in dry.stdout.splitlines()
    assert client.get("/api/etl/jobs/").get_json()["jobs"][0]["cron"] == "0 2 * * *"
    changed = etl("jobs", "apply", str(jobs_yaml))
    assert "job orders: updated (schedule)" in changed.stdout.splitlines()
    job = client.get("/api/etl/jobs/").get_json()["jobs"][0]
    assert (job["cron"], job["schedule"]["timezone"]) == ("30 3 * * 1", "UTC")

    exported = etl("jobs", "export", str(tmp_path / "exported.yaml"))
    assert exported.exit_code == 0
    text = (tmp_path / "exported.yaml").read_text()
    assert PASSWORD not in text and "password" not in yaml.safe_load(text)["connections"]["test pg"]
    assert yaml.safe_load(text)["jobs"]["orders"] == {
        "connection": "test pg",
        "schema_name": "public",
        "table_name": "composite_pk",
        "selected_columns": ["region", "order_no", "amount"],
        "load_type": "catalog",
        "primary_key": ["region", "order_no"],
        "destination": {"dataset": dataset, "table": "orders"},
        "schedule": {"type": "weekly", "time": "03:30", "day_of_week": "mon"},
    }
    round_trip = etl("jobs", "apply", str(tmp_path / "exported.yaml"))
    assert round_trip.stdout.splitlines()[-1] == "Applied: 0 created, 0 updated, 2 unchanged, 0 not applied."

    jobs_yaml.write_text(
        job_file(
            postgres_db,
            dataset,
            load_type="transactional",
            timestamp_column="modified_at",
            selected_columns=["region", "order_no", "amount", "modified_at"],
        )
    )
    refused = etl("jobs", "apply", str(jobs_yaml))
    assert refused.exit_code == 1
    assert (
        f"job orders: not applied: load_type: 'catalog' -> 'transactional' cannot be changed in place. "
        f"Delete the job (etl-wizard jobs delete {job['id']}) and apply again to create it anew" in refused.stdout
    )
    assert refused.stderr == f"Error: 1 item(s) in {jobs_yaml} could not be applied: see above.\n"
    assert client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]["selected_columns"] == [
        "region",
        "order_no",
        "amount",
    ]  # left alone, the editable field included

    shown = dict(line.split(":", 1) for line in etl("jobs", "show", job["id"]).stdout.splitlines())
    assert shown["connection"].split() == ["test", "pg", f"({job['connection_id']})"]
    assert shown["destination"].strip() == f"{dataset}.orders" and shown["state"].strip() == "active"
    assert etl("jobs", "pause", "orders").stdout == "Job orders paused; schedule: 30 3 * * 1 UTC.\n"
    assert etl("jobs", "list").stdout.splitlines()[1].split()[:3] == ["orders", "paused", "catalog"]
    assert etl("jobs", "resume", "orders").exit_code == 0
    assert etl("jobs", "delete", "orders", "--yes").stdout == "Deleted job orders.\n"
    assert etl("tables", "list", dataset).stdout.splitlines()[1].split() == ["orders", "2", "6"]  # the table stays


def test_an_api_error_is_readable(etl, postgres_db, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_PG_PASSWORD", PASSWORD)
    jobs_yaml = tmp_path / "jobs.yaml"
    jobs_yaml.write_text(job_file(postgres_db, f"cli_{uuid.uuid4().hex[:8]}", selected_columns=["region", "nope"]))
    result = etl("jobs", "apply", str(jobs_yaml))
    assert result.exit_code == 1
    assert result.stdout.startswith("connection test pg: created")
    assert result.stderr == "Error: selected_columns: column 'nope' is not in public.composite_pk\n"

    missing = etl("jobs", "show", "no such job")
    assert (missing.exit_code, missing.stderr) == (1, "Error: No job has the id or name 'no such job'.\n")

    bad = etl(
        "connections",
        "create",
        "bad",
        "--type",
        "postgresql",
        "--host",
        "db host",
        "--database",
        "d",
        "--user",
        "u",
        input="\n",
    )
    assert bad.exit_code == 1
    assert bad.stderr.splitlines()[-1] == "Error: host: must be a host name or IP address"  # after the prompt


def test_connections_with_a_prompted_password(etl, postgres_db, server):
    created = etl(
        "connections",
        "create",
        "prompted",
        "--type",
        "postgresql",
        "--host",
        postgres_db["host"],
        "--database",
        postgres_db["database"],
        "--user",
        postgres_db["user"],
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("Created connection prompted (id ")
    listed = etl("connections", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "TYPE", "WHERE", "USER", "SECURITY", "ID"]
    assert listed[1].split()[:5] == [
        "prompted",
        "postgresql",
        f"{postgres_db['host']}:5432/{postgres_db['database']}",
        "postgres",
        "disable",  # the default to a loopback address
    ]
    tested = etl("connections", "test", "prompted")
    assert tested.exit_code == 0 and tested.stdout.splitlines()[-1].startswith(
        "Connection prompted: reached PostgreSQL"
    )
    assert etl("connections", "delete", "prompted", "--yes").stdout == "Deleted connection prompted.\n"
    assert etl("connections", "list", "--json").stdout == "[]\n"

    _, seen = server
    assert etl("--token", "id-token-123", "jobs", "list").stdout == "No jobs.\n"
    assert seen[-1] == "Bearer id-token-123" and seen[0] is None  # no token is needed for this machine


def test_the_readme_example_against_the_demo_data(etl, stack, tmp_path):
    """README, Command line: examples/jobs.yaml applied to the demo's sample shop, run, shown, exported."""
    from etlwizard.bigquery_client import make_client
    from web.demo import ensure_sample_connection, seed_sample_dataset

    seed_sample_dataset(make_client(stack.settings))
    ensure_sample_connection(stack)
    example = str(Path(__file__).parents[2] / "examples" / "jobs.yaml")

    applied = etl("jobs", "apply", example)
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines()[-1] == "Applied: 2 created, 0 updated, 0 unchanged, 0 not applied."
    run = etl("jobs", "run", "Sample orders", "--wait", "--json")
    assert run.exit_code == 0, run.output
    loaded = json.loads(run.stdout)
    assert loaded["status"] == "succeeded" and 90 < loaded["rows"] < 110  # an order every 7 hours, 30 days
    assert etl("tables", "show", "shop_copy.orders", "--rows", "5").stdout.startswith(
        f"shop_copy.orders: {loaded['rows']} rows\n"
    )
    assert etl("jobs", "export", str(tmp_path / "jobs.yaml")).exit_code == 0
    again = etl("jobs", "apply", str(tmp_path / "jobs.yaml"))
    assert again.stdout.splitlines()[-1] == "Applied: 0 created, 0 updated, 3 unchanged, 0 not applied."
    assert (
        etl("jobs", "apply", example).stdout.splitlines()[-1]
        == "Applied: 0 created, 0 updated, 2 unchanged, 0 not applied."
    )


def test_a_refused_token_is_explained(monkeypatch):
    """Cloud Run answers a token it refuses with an HTML 403 before the wizard sees the request."""

    def cloud_run(environ, start_response):
        start_response("403 Forbidden", [("Content-Type", "text/html")])
        return [b"<html><body>Error: Forbidden</body></html>"]

    http = make_server("127.0.0.1", 0, cloud_run)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_port}"
    monkeypatch.setenv("ETL_WIZARD_TOKEN", "expired")
    result = CliRunner().invoke(cli, ["--url", url, "connections", "list"])
    http.shutdown()
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {url} answered 403 without JSON: is the token for this URL? "
        '(pass --token "$(gcloud auth print-identity-token)" or set ETL_WIZARD_TOKEN to it)\n'
    )


def test_a_bad_job_file_changes_nothing(etl, postgres_db, tmp_path, client):
    jobs_yaml = tmp_path / "jobs.yaml"
    jobs_yaml.write_text("jobs:\n  orders:\n    connection: test pg\n    schedul: {type: daily}\n")
    typo = etl("jobs", "apply", str(jobs_yaml))
    assert (typo.exit_code, typo.stderr.splitlines()[0]) == (
        1,
        "Error: job 'orders': unknown field(s) schedul (did you mean schedule?); "
        "known: "
        + ", ".join(
            [
                "connection",
                "schema_name",
                "table_name",
                "selected_columns",
                "load_type",
                "timestamp_column",
                "primary_key",
                "historical_backfill",
                "historical_start_date",
                "destination",
                "schedule",
            ]
        )
        + ".",
    )
    jobs_yaml.write_text("jobs:\n  orders:\n    connection: test pg\n    schedule: {type: daily, time: 12:30}\n")
    assert (
        etl("jobs", "apply", str(jobs_yaml)).stderr
        == "Error: job 'orders': write schedule.time in quotes ('12:30'): YAML reads it as a number.\n"
    )
    jobs_yaml.write_text(job_file(postgres_db, "cli_nowhere").replace("test pg", "elsewhere", 1))
    missing = etl("jobs", "apply", str(jobs_yaml))
    assert missing.stderr == "Error: job 'orders': no connection is named 'test pg' in the file or the wizard.\n"
    jobs_yaml.write_text(job_file(postgres_db, "cli_nowhere"))
    unset = etl("jobs", "apply", str(jobs_yaml))
    assert unset.stderr == "Error: connection 'test pg': password_env names 'TEST_PG_PASSWORD', which is not set.\n"
    assert client.get("/api/connections/").get_json()["connections"] == []
    assert client.get("/api/etl/jobs/").get_json()["jobs"] == []


def test_apply_reconnects_a_job_and_asks_for_a_new_password(etl, postgres_db, tmp_path, monkeypatch, client):
    monkeypatch.setenv("TEST_PG_PASSWORD", PASSWORD)
    dataset = f"cli_{uuid.uuid4().hex[:8]}"
    jobs_yaml = tmp_path / "jobs.yaml"
    jobs_yaml.write_text(job_file(postgres_db, dataset))
    assert etl("jobs", "apply", str(jobs_yaml)).exit_code == 0

    document = yaml.safe_load(job_file(postgres_db, dataset))
    document["connections"]["rotated"] = {
        k: v for k, v in document["connections"]["test pg"].items() if k != "password_env"
    }  # no variable: apply asks for it
    document["jobs"]["orders"]["connection"] = "rotated"
    jobs_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
    rotated = etl("jobs", "apply", str(jobs_yaml), input=PASSWORD + "\n")
    assert rotated.exit_code == 0, rotated.output
    assert rotated.stderr == "Password for connection rotated (empty for none): \n"
    lines = rotated.stdout.splitlines()
    assert lines[0] == "connection test pg: no change" and lines[1].startswith("connection rotated: created")
    assert lines[2:] == [
        "job orders: updated (connection)",
        "Applied: 1 created, 1 updated, 1 unchanged, 0 not applied.",
    ]
    connections = {c["name"]: c["id"] for c in client.get("/api/connections/").get_json()["connections"]}
    assert client.get("/api/etl/jobs/").get_json()["jobs"][0]["connection_id"] == connections["rotated"]
    assert (
        etl("jobs", "apply", str(jobs_yaml)).stdout.splitlines()[-1]
        == "Applied: 0 created, 0 updated, 3 unchanged, 0 not applied."
    )


def test_the_console_script(server):
    """The installed `etl-wizard` (bin/_setup.sh installs the package), as a user runs it."""
    script = Path(sys.executable).parent / "etl-wizard"
    assert script.exists(), "etl-wizard is not installed: bin/demo or bin/test sets up .venv with it"
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "connections" in shown.stdout and "jobs" in shown.stdout
    url, _ = server
    listed = subprocess.run(
        [str(script), "--url", url, "jobs", "list", "--json"], capture_output=True, text=True, timeout=60
    )
    assert (listed.returncode, listed.stdout) == (0, "[]\n")
    refused = subprocess.run(
        [str(script), "--url", url, "runs", "list", "nope"], capture_output=True, text=True, timeout=60
    )
    assert (refused.returncode, refused.stderr) == (1, "Error: No job has the id or name 'nope'.\n")
