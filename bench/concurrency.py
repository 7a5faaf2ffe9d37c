"""Fifty users at once: concurrent table previews against a real server on a local port.

    .venv/bin/python bench/concurrency.py [--clients 50] [--rounds 5] [--server werkzeug|gunicorn]
        [--port PORT: fire at a wizard already running there, e.g. bin/demo's 8080, instead]
        (bin/test or bin/demo made .venv)

Creates a throwaway PostgreSQL database holding a 30-column table of 10,000 rows, starts the wizard
over an embedded stack in a child process (werkzeug's threaded server, as bin/demo serves it, or
gunicorn with the Dockerfile's workers and threads), saves a connection to the database through the
API, then fires `--clients` previews (POST /api/connections/<id>/fetch-table-preview/) at the same
moment, `--rounds` times, each on its own HTTP connection as separate browsers would. Prints one
preview alone, then p50/p95/max of the concurrent ones, and the peak number of connections to the
database seen in pg_stat_activity meanwhile (sampled every 5 ms).

The BigQuery emulator is not started: a preview never touches the warehouse.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]

from throwaway import POSTGRES, postgres_database  # noqa: E402

COLUMNS = 30
ROWS = 10_000
KINDS = ["integer", "numeric(12,2)", "text", "timestamptz", "boolean"]
VALUES = ["g", "g * 1.25", "'text ' || g", "now() - g * interval '1 minute'", "g % 2 = 0"]


def serve_werkzeug(port: int) -> None:
    """The child process: the wizard as bin/demo serves it (Flask's app.run(threaded=True))."""
    from werkzeug.serving import make_server

    from web.app import create_app

    make_server("127.0.0.1", port, create_app(), threaded=True).serve_forever()  # a stack from the environment


def start_server(kind: str, port: int, data_dir: str) -> subprocess.Popen:
    env = {**os.environ, "ETL_DATA_DIR": data_dir, "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}"}
    if kind == "gunicorn":
        command = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}"]
        command += gunicorn_sizing() + ["web.app:create_app()"]
    else:
        command = [sys.executable, __file__, "--serve", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request(port, "GET", "/api/connections/")
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {kind} server did not answer on port {port} within 30 s")


def gunicorn_sizing() -> list[str]:
    """--workers and --threads as the Dockerfile starts gunicorn."""
    workers, threads = re.search(r"--workers (\d+) --threads (\d+)", (ROOT / "Dockerfile").read_text()).groups()
    return ["--workers", workers, "--threads", threads]


def request(port: int, method: str, path: str, body: object = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConnectionPeak:
    """Samples pg_stat_activity for one database on a thread of its own; .peak is the most seen."""

    def __init__(self, database: str):
        import pg8000.native

        self.db = pg8000.native.Connection(database="postgres", **POSTGRES)
        self.database = database
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            ((count,),) = self.db.run("SELECT count(*) FROM pg_stat_activity WHERE datname = :d", d=self.database)
            self.peak = max(self.peak, count)
            time.sleep(0.005)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        self.db.close()
        return self.peak


def fire(port: int, path: str, body: dict, clients: int) -> list[float]:
    """`clients` previews released at the same moment; each one's seconds, start to last byte."""
    barrier = threading.Barrier(clients)
    seconds: list[float] = [0.0] * clients
    failures: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        status, answer = request(port, "POST", path, body)
        seconds[i] = time.perf_counter() - started
        if status != 200 or len(answer.get("columns", ())) != COLUMNS:
            failures.append(f"{status}: {answer.get('message')}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} of {clients} previews failed, e.g. {failures[0]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", choices=["werkzeug", "gunicorn"], default="werkzeug")
    parser.add_argument("--port", type=int, help="fire at a wizard already serving here (bin/demo) instead")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve_werkzeug(args.serve)
        return

    with postgres_database() as (name, db), tempfile.TemporaryDirectory() as data:
        columns = ", ".join(f"c{i:02d} {KINDS[i % len(KINDS)]}" for i in range(COLUMNS - 1))
        values = ", ".join(VALUES[i % len(VALUES)] for i in range(COLUMNS - 1))
        db.run(f"CREATE TABLE wide (id bigint PRIMARY KEY, {columns})")
        db.run(f"INSERT INTO wide SELECT g, {values} FROM generate_series(1, {ROWS}) g")
        db.run("ANALYZE wide")
        db.close()

        port = args.port or free_port()
        server = None if args.port else start_server(args.server, port, data)
        saved: dict = {}
        try:
            status, saved = request(
                port,
                "POST",
                "/api/connections/",
                {"name": "bench", "type": "postgresql", "database": name, **POSTGRES},
            )
            assert status == 201, saved
            path = f"/api/connections/{saved['connection']['id']}/fetch-table-preview/"
            body = {"schema_name": "public", "table_name": "wide"}
            alone = [fire(port, path, body, 1)[0] for _ in range(20)][5:]  # the first ones warm up

            peak = ConnectionPeak(name)
            concurrent: list[float] = []
            for _ in range(args.rounds):
                concurrent += fire(port, path, body, args.clients)
            most = peak.stop()
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            elif "connection" in saved:  # a wizard of yours: the saved connection goes with the database
                request(port, "DELETE", f"/api/connections/{saved['connection']['id']}/")

    concurrent.sort()
    served = f"the wizard on port {args.port}" if args.port else args.server
    print(f"{args.clients} concurrent previews of a {COLUMNS}-column table, {args.rounds} rounds, {served}:")
    print(f"  one alone       median {statistics.median(alone) * 1000:6.0f} ms")
    print(
        f"  {args.clients} at once      p50 {statistics.median(concurrent) * 1000:6.0f} ms   "
        f"p95 {concurrent[int(len(concurrent) * 0.95) - 1] * 1000:6.0f} ms   max {concurrent[-1] * 1000:6.0f} ms"
    )
    print(f"  connections to the database at once (pg_stat_activity, peak): {most}")


if __name__ == "__main__":
    main()
