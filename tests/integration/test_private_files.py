"""The embedded stack's files are its owner's only (issue 13): the data directory 0700, every
directory in it 0700 and every file 0600 — the job store (and its -wal/-shm), the secrets file, the
BigQuery emulator's tables, staging files and log — even under a umask that would make them 0644."""

import os
import sqlite3
import stat
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from etlwizard.emulator import BigQueryEmulator
from etlwizard.run.engine import handle_message
from etlwizard.stack import Stack
from tests.integration.loading import orders_job
from web.app import create_app


def modes(data_dir: Path) -> dict[str, str]:
    """Every path under data_dir (and data_dir itself, as ".") -> its permission bits in octal."""
    found = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)  # the usual default: files 0644, directories 0755
    yield
    os.umask(previous)


def test_a_demo_like_stack_keeps_every_file_private(umask_022, settings, postgres_db, dataset):
    data_dir = settings.data_dir
    # a data directory an earlier version made: open to everyone
    data_dir.mkdir(mode=0o755)
    (data_dir / "notes.txt").write_text("from before")
    (data_dir / "notes.txt").chmod(0o644)

    # as web/demo.py starts it: the emulator's tables and log in the data directory
    emulator = BigQueryEmulator(settings.project, data_dir / "bigquery", log_path=data_dir / "bigquery.log")
    try:
        stack = Stack(replace(settings, bigquery_endpoint=emulator.start()), run_handler=handle_message)
        client = create_app(stack=stack).test_client()
        connection = client.post(
            "/api/connections/", json={"name": "pg", "type": "postgresql", "password": "secret", **postgres_db}
        )
        assert connection.status_code == 201, connection.get_json()
        job = client.post("/api/etl/jobs/", json=orders_job(connection.get_json()["connection"]["id"], dataset))
        assert job.status_code == 201, job.get_json()
        job_id = job.get_json()["job"]["id"]
        assert client.post(f"/api/etl/jobs/{job_id}/run/", json={}).status_code == 202
        stack.publisher.drain()
        runs = client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]
        assert [r["status"] for r in runs] == ["succeeded"], runs

        # SQLite's -wal and -shm live while a connection is open (as the demo's always is)
        with closing(sqlite3.connect(data_dir / "jobs.sqlite3")) as held:
            held.execute("SELECT count(*) FROM documents").fetchall()
            found = modes(data_dir)
        for name in (
            "jobs.sqlite3",
            "jobs.sqlite3-wal",
            "jobs.sqlite3-shm",
            "secrets.json",
            "bigquery.log",
            "bigquery",
        ):
            assert name in found, sorted(found)
        assert len([p for p in found if p.startswith("bigquery/")]) > 0  # the emulator's own files
        wrong = {
            path: mode
            for path, mode in found.items()
            if mode != ("0o700" if path == "." or (data_dir / path).is_dir() else "0o600")
        }
        assert wrong == {}
    finally:
        emulator.stop()
