"""Load throughput against the database's own bulk export, in the same run.

    .venv/bin/python bench/load.py [rows]        (default 2,000,000; bin/test or bin/demo made .venv)

Builds a 10-column table (bigint id, int, numeric(12,2), varchar, text, two timestamps, bool, json)
in throwaway PostgreSQL and MariaDB databases, then for each:
  reference  the database's bulk export of the table to /dev/null: COPY ... TO STDOUT through psql,
             mariadb --quick --batch
  full       a catalog run into the embedded warehouse (the BigQuery emulator)
  increment  a transactional run picking up 1% new rows after a full load
and prints rows/s, MB/s (of the reference's text output) and the ratio, and this process's peak RSS.
"""

import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]

from etlwizard import connections, jobs, runner  # noqa: E402
from etlwizard.config import Settings  # noqa: E402
from etlwizard.emulator import BigQueryEmulator  # noqa: E402
from etlwizard.stack import Stack  # noqa: E402
from throwaway import mariadb_database, postgres_database  # noqa: E402

PG_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty int, price numeric(12,2), sku varchar(40),
  note text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, active boolean, attrs json)"""
PG_FILL = """INSERT INTO bench SELECT g, g % 1000, (g % 100000) / 100.0, 'SKU-' || g, repeat('x', 40) || g,
  now() - (g || ' seconds')::interval, now() - interval '1 hour' - (g || ' milliseconds')::interval,
  g % 2 = 0, json_build_object('g', g, 'tag', 'bench') FROM generate_series({start}, {stop}) g"""
MY_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty int, price decimal(12,2), sku varchar(40),
  note text, created_at datetime(6) NOT NULL, updated_at datetime(6) NOT NULL, active tinyint(1), attrs json)"""
MY_FILL = """INSERT INTO bench SELECT seq, seq % 1000, (seq % 100000) / 100.0, CONCAT('SKU-', seq),
  CONCAT(REPEAT('x', 40), seq), NOW(6) - INTERVAL seq SECOND, NOW(6) - INTERVAL 1 HOUR - INTERVAL seq * 1000 MICROSECOND,
  seq % 2 = 0, JSON_OBJECT('g', seq, 'tag', 'bench') FROM seq_{start}_to_{stop}"""
COLUMNS = ["id", "qty", "price", "sku", "note", "created_at", "updated_at", "active", "attrs"]


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def export_seconds(command: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    out = subprocess.run(command, stdout=subprocess.PIPE, check=True).stdout
    return time.perf_counter() - started, len(out)


def run_once(stack, connection_id, schema, dataset, load_type):
    body = {"name": f"bench {load_type}", "connection_id": connection_id, "schema_name": schema,
            "table_name": "bench", "selected_columns": COLUMNS, "load_type": load_type,
            "timestamp_column": "updated_at" if load_type == "transactional" else None,
            "historical_backfill": "all", "destination": {"mode": "new", "dataset": dataset, "table": f"bench_{load_type}"}}
    job = jobs.create_job(stack, body)
    seconds, run = timed(lambda: runner.run_job(stack, job["id"]))
    return job, seconds, run


def report(label, rows, seconds, reference_rate, text_bytes):
    rate = rows / seconds
    print(f"  {label:<10} {rows:>10,} rows {seconds:7.1f} s {rate:>11,.0f} rows/s "
          f"{text_bytes / seconds / 1e6:7.1f} MB/s   {rate / reference_rate:6.0%} of the export")


def bench(name, stack, connection_id, schema, export, add_rows, rows):
    print(f"{name}: {rows:,} rows")
    ref_seconds, text_bytes = export_seconds(export)
    reference_rate = rows / ref_seconds
    print(f"  {'reference':<10} {rows:>10,} rows {ref_seconds:7.1f} s {reference_rate:>11,.0f} rows/s "
          f"{text_bytes / ref_seconds / 1e6:7.1f} MB/s")
    dataset = f"bench_{uuid.uuid4().hex[:6]}"
    _, seconds, run = run_once(stack, connection_id, schema, dataset, "catalog")
    report("full", run["rows"], seconds, reference_rate, text_bytes)
    job, _, _ = run_once(stack, connection_id, schema, dataset, "transactional")
    add_rows()
    time.sleep(stack.settings.run_lag_seconds + 1)
    seconds, run = timed(lambda: runner.run_job(stack, job["id"]))
    report("increment", run["rows"], seconds, reference_rate, text_bytes * run["rows"] / rows)


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    extra = rows // 100
    with tempfile.TemporaryDirectory() as data, BigQueryEmulator("bench-proj") as url:
        stack = Stack(Settings(project="bench-proj", bigquery_endpoint=url, data_dir=Path(data), run_lag_seconds=1))

        with postgres_database() as (name, db):
            db.run(PG_TABLE)
            db.run(PG_FILL.format(start=1, stop=rows))
            db.run("ANALYZE bench")
            pg = connections.create_connection(stack, {"name": "pg", "type": "postgresql", "host": "127.0.0.1",
                                                       "database": name, "user": "postgres"})
            bench("PostgreSQL", stack, pg["id"], "public",
                  ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Xqc", "COPY (SELECT * FROM bench) TO STDOUT"],
                  lambda: db.run(PG_FILL.replace("now() - interval '1 hour' - (g || ' milliseconds')::interval", "now()")
                                 .format(start=rows + 1, stop=rows + extra)),
                  rows)
            db.close()

        with mariadb_database() as (name, my):
            with my.cursor() as cursor:
                cursor.execute(MY_TABLE)
                cursor.execute(MY_FILL.format(start=1, stop=rows))
            maria = connections.create_connection(stack, {"name": "maria", "type": "mysql", "host": "127.0.0.1",
                                                          "database": name, "user": "root"})

            def add():
                with my.cursor() as cursor:
                    cursor.execute(MY_FILL.replace("NOW(6) - INTERVAL 1 HOUR - INTERVAL seq * 1000 MICROSECOND", "NOW(6)")
                                   .format(start=rows + 1, stop=rows + extra))

            bench("MariaDB", stack, maria["id"], name,
                  ["mariadb", "-h", "127.0.0.1", "-u", "root", "--quick", "--batch", "-e", f"SELECT * FROM `{name}`.bench"],
                  add, rows)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
