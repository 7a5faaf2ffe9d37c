"""A real demo process (bin/demo's `python -m web.demo`) killed in the middle of a run, and started
again on the same data directory: the job runs again at once, each row lands once, no staging
table is left, and the cut-off run says what happened to it."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from etlwizard.emulator import free_port
from tests.integration.loading import BIG_ROWS as ROWS

ROOT = Path(__file__).parents[2]


class Demo:
    """The demo as a user runs it, on a data directory and port of the test's; loads in small
    files one at a time, so that a run lasts long enough to be cut off."""

    def __init__(self, data_dir: Path, log: Path, env: dict[str, str] | None = None):
        self.data_dir, self.log, self.port = data_dir, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # These tests are about runs cut off: no PostgreSQL sample shop (test_demo_sample.py has it)
        self.env = {"ETL_SAMPLE_POSTGRES": "off", **(env or {})}

    def start(self) -> "Demo":
        env = {
            **os.environ,
            "ETL_DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "ETL_CHUNK_ROWS": "20000",
            "ETL_BATCH_ROWS": "5000",
            "ETL_LOADS_IN_FLIGHT": "1",
            **self.env,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "web.demo"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                requests.get(f"{self.url}/api/connections/", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.3)
        raise AssertionError(f"the demo did not answer within 120 s: {self.log.read_text()[-3000:]}")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(method, self.url + path, json=body if body is not None else {}, timeout=60)
        assert response.status_code < 300, response.text
        return response.json()

    def runs(self, job_id: str) -> list[dict]:
        return self.call("GET", f"/api/etl/jobs/{job_id}/runs/")["runs"]

    def wait_for_run(self, job_id: str, done, seconds: float = 120) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            runs = self.runs(job_id)
            if runs and done(runs[0]):
                return runs[0]
            time.sleep(0.2)
        raise AssertionError(f"no run of job {job_id} came to that within {seconds} s: {self.runs(job_id)}")

    def stop(self, sig: int) -> float:
        """Send `sig`; the seconds until the process and its children had gone (its emulator, and
        an embedded PostgreSQL: on the same data directory there can be one of each)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        deadline = time.monotonic() + 60
        while self.children_left():
            assert time.monotonic() < deadline, f"still running after 60 s: {self.children_left()}"
            time.sleep(0.1)
        return time.monotonic() - started

    def children_left(self) -> list[str]:
        """Processes working on the data directory: named on their command line (the emulator, the
        PostgreSQL server), or in it (each PostgreSQL process works in its cluster)."""
        return [
            _cmdline(pid)
            for pid in os.listdir("/proc")
            if pid.isdigit() and (str(self.data_dir) in _cmdline(pid) or _cwd(pid).startswith(f"{self.data_dir}/"))
        ]


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _cwd(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd") + "/"
    except OSError:
        return ""


@pytest.fixture
def demo(tmp_path):
    made = []

    def start() -> Demo:
        made.append(Demo(tmp_path / "data", tmp_path / "demo.log").start())
        return made[-1]

    yield start
    for running in made:
        if running.process and running.process.poll() is None:
            running.stop(signal.SIGKILL)


def a_run_in_the_middle(demo: Demo, postgres_db: dict, table: str) -> tuple[dict, str]:
    connection = demo.call("POST", "/api/connections/", {"name": "pg", "type": "postgresql", **postgres_db})
    dataset = f"d_{uuid.uuid4().hex[:8]}"
    job = demo.call(
        "POST",
        "/api/etl/jobs/",
        {
            "name": "big",
            "connection_id": connection["connection"]["id"],
            "schema_name": "public",
            "table_name": table,
            "selected_columns": ["id", "note", "at"],
            "load_type": "catalog",
            "destination": {"mode": "new", "dataset": dataset, "table": "big"},
        },
    )["job"]
    demo.call("POST", f"/api/etl/jobs/{job['id']}/run/")
    running = demo.wait_for_run(job["id"], lambda r: r["status"] != "skipped")
    assert running["status"] == "running"
    time.sleep(0.5)  # well into it: the run takes seconds (small files, one load job at a time)
    return running, job["id"]


def then_the_job_runs_again_and_lands_each_row_once(demo: Demo, job_id: str, cut_off: dict) -> None:
    demo.call("POST", f"/api/etl/jobs/{job_id}/run/")
    done = demo.wait_for_run(job_id, lambda r: r["id"] != cut_off["id"] and r["status"] != "running")
    assert (done["status"], done["rows"]) == ("succeeded", ROWS)
    job = demo.call("GET", f"/api/etl/jobs/{job_id}/")["job"]
    dataset = job["destination"]["dataset"]
    assert demo.call("GET", f"/api/etl/datasets/{dataset}/tables/big/")["table"]["row_count"] == ROWS
    assert [t["table_name"] for t in demo.call("GET", f"/api/etl/datasets/{dataset}/tables/")["tables"]] == ["big"]
    gone = requests.get(f"{demo.url}/api/etl/datasets/{dataset}/tables/big__etl_staging_{cut_off['id']}/", timeout=30)
    assert gone.status_code == 404  # the cut-off run's staging table went with it


def test_a_killed_demo_leaves_no_job_blocked(demo, postgres_db, big_table):
    first = demo()
    cut_off, job_id = a_run_in_the_middle(first, postgres_db, big_table)
    first.stop(signal.SIGKILL)

    second = demo()  # on the same data directory
    (dead,) = [r for r in second.runs(job_id) if r["id"] == cut_off["id"]]
    assert dead["status"] == "abandoned"
    assert dead["error"] == "The process running it stopped (found at start-up). Nothing was committed."
    then_the_job_runs_again_and_lands_each_row_once(second, job_id, cut_off)


def test_sigterm_stops_the_demo_within_ten_seconds_and_records_the_run(demo, postgres_db, big_table):
    first = demo()
    cut_off, job_id = a_run_in_the_middle(first, postgres_db, big_table)
    assert first.stop(signal.SIGTERM) < 10

    second = demo()
    (stopped,) = [r for r in second.runs(job_id) if r["id"] == cut_off["id"]]
    assert stopped["status"] == "interrupted"
    assert stopped["error"].startswith("The run was interrupted: its process is shutting down.")
    then_the_job_runs_again_and_lands_each_row_once(second, job_id, cut_off)
