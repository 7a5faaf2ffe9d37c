"""Load throughput against the database's own bulk export, in the same run.

    .venv/bin/python bench/load.py [rows] [postgresql|mariadb] [--load-seconds S]
        (default 2,000,000 rows, both databases; bin/test or bin/demo made .venv)

Builds a 10-column table (bigint id, int, numeric(12,2), varchar, text, two timestamps, bool, json)
in throwaway PostgreSQL and MariaDB databases, then for each:
  reference  the database's bulk export of the table to /dev/null: COPY ... TO STDOUT through psql,
             mariadb --quick --batch
  extract    the table read by the load's bulk reader into Parquet files, without loading them: the
             part of a run that uses this machine's cores in production, where BigQuery loads and merges
  full       a catalog run into the embedded warehouse (the BigQuery emulator, on the same cores)
  replace    the same catalog job run again: its snapshot replaces the first one's rows
  increment  a transactional run picking up 1% new rows after a full load
and prints rows/s, MB/s (of the reference's text output), the ratio, and this process's peak RSS
during each step. Before the steps: the table vacuumed (PostgreSQL) or its pages written back
(MariaDB), so no background work of the fill runs during them, and one run of a 1,000-row copy
(the emulator and drivers warmed up, as in a stack already running).

With --load-seconds S, every load job takes at least S seconds, as BigQuery's do whatever their size
(the emulator's take milliseconds), and the steps are the reference and the full load, once with one
load job in flight at a time and once with ETL_LOADS_IN_FLIGHT's default.

google-cloud-bigquery imports pandas when it is installed; the functions' requirements.txt has no
pandas (only the emulator in the dev venv needs it), so the benchmark keeps it out, as in production.
"""

import importlib.abc
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path


class _WithoutPandas(importlib.abc.MetaPathFinder):
    """Imports of pandas fail as where it is not installed (see above)."""

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in ("pandas", "db_dtypes"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


sys.meta_path.insert(0, _WithoutPandas())
if os.environ.get("MALLOC_ARENA_MAX") is None:  # as bin/_setup.sh and infra/ set it for runs
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_ARENA_MAX": "2"})
ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]

from throwaway import mariadb_database, postgres_database  # noqa: E402

from etlwizard import connections, jobs  # noqa: E402
from etlwizard.columnar import ParquetSpool  # noqa: E402
from etlwizard.config import Settings  # noqa: E402
from etlwizard.emulator import BigQueryEmulator  # noqa: E402
from etlwizard.run.engine import handle_message, run_job  # noqa: E402
from etlwizard.stack import Stack  # noqa: E402

PG_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty int, price numeric(12,2), sku varchar(40),
  note text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, active boolean, attrs json)"""
PG_FILL = """INSERT INTO bench SELECT g, g % 1000, (g % 100000) / 100.0, 'SKU-' || g, repeat('x', 40) || g,
  now() - (g || ' seconds')::interval, now() - interval '1 hour' - (g || ' milliseconds')::interval,
  g % 2 = 0, json_build_object('g', g, 'tag', 'bench') FROM generate_series({start}, {stop}) g"""
MY_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty int, price decimal(12,2), sku varchar(40),
  note text, created_at datetime(6) NOT NULL, updated_at datetime(6) NOT NULL, active tinyint(1), attrs json,
  KEY bench_updated_at (updated_at))"""
MY_FILL = """INSERT INTO bench SELECT seq, seq % 1000, (seq % 100000) / 100.0, CONCAT('SKU-', seq),
  CONCAT(REPEAT('x', 40), seq), NOW(6) - INTERVAL seq SECOND,
  NOW(6) - INTERVAL 1 HOUR - INTERVAL seq * 1000 MICROSECOND, seq % 2 = 0, JSON_OBJECT('g', seq, 'tag', 'bench')
  FROM seq_{start}_to_{stop}"""
COLUMNS = ["id", "qty", "price", "sku", "note", "created_at", "updated_at", "active", "attrs"]


def _rss_mb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 >> 20


class PeakRss:
    """The highest resident set size of this process while the block runs, sampled every 10 ms."""

    def __enter__(self):
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(fn):
    with PeakRss() as rss:
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    return seconds, result, rss.peak


def export_seconds(command: list[str]) -> tuple[float, int]:
    started, size = time.perf_counter(), 0
    with subprocess.Popen(command, stdout=subprocess.PIPE) as export:
        while chunk := export.stdout.read(1 << 20):
            size += len(chunk)
    if export.returncode:
        raise SystemExit(f"{command[0]} failed")
    return time.perf_counter() - started, size


def extract(stack, connection_id, schema):
    """The bulk reader into Parquet files (what a run does before its load jobs); returns rows."""
    rows, spool = 0, None
    with connections.open_connection(stack, connection_id) as source:
        meta = source.fetch_table_metadata(schema, "bench")
        columns = [meta.column(n) for n in COLUMNS]
        schema = stack.warehouse.arrow_schema(columns)
        for batch, _ in source.read_arrow(meta, columns, None, None, None, stack.settings.batch_rows, schema):
            spool = spool or ParquetSpool(schema)
            spool.write(batch)
            rows += batch.num_rows
            if spool.rows >= stack.settings.chunk_rows:
                spool.finish()
                spool.discard()
                spool = None
    if spool is not None:
        spool.finish()
        spool.discard()
    return rows


def run_once(stack, connection_id, schema, dataset, load_type, table="bench"):
    body = {
        "name": f"bench {load_type}",
        "connection_id": connection_id,
        "schema_name": schema,
        "table_name": table,
        "selected_columns": COLUMNS,
        "load_type": load_type,
        "timestamp_column": "updated_at" if load_type == "transactional" else None,
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": f"{table}_{load_type}"},
        "checks": {"verify": False},  # the load alone: bench/trust.py measures verification
    }
    job = jobs.create_job(stack, body)
    seconds, run, peak = timed(lambda: run_job(stack, job["id"]))
    return job, seconds, run, peak


def report(label, rows, seconds, reference_rate, text_bytes, peak):
    rate = rows / seconds
    print(
        f"  {label:<10} {rows:>10,} rows {seconds:7.1f} s {rate:>11,.0f} rows/s "
        f"{text_bytes / seconds / 1e6:7.1f} MB/s   {rate / reference_rate:6.0%} of the export   "
        f"peak RSS {peak} MB"
    )


def slow_loads(stack, seconds):
    """The stack's load jobs padded to take at least `seconds` each."""
    load = stack.warehouse.load_parquet

    def slow(*args):
        started = time.monotonic()
        load(*args)
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))

    stack.warehouse.load_parquet = slow


def bench(name, stack, connection_id, schema, export, add_rows, rows, load_seconds=None):
    print(f"{name}: {rows:,} rows")
    # a first run on a small copy: the emulator and the drivers start up, as in a stack already running
    run_once(stack, connection_id, schema, f"warmup_{uuid.uuid4().hex[:6]}", "catalog", table="warmup")
    ref_seconds, text_bytes = export_seconds(export)
    reference_rate = rows / ref_seconds
    print(
        f"  {'reference':<10} {rows:>10,} rows {ref_seconds:7.1f} s {reference_rate:>11,.0f} rows/s "
        f"{text_bytes / ref_seconds / 1e6:7.1f} MB/s"
    )
    if load_seconds:
        for in_flight in (1, stack.settings.loads_in_flight):
            padded = Stack(replace(stack.settings, loads_in_flight=in_flight), run_handler=handle_message)
            slow_loads(padded, load_seconds)
            _, seconds, run, peak = run_once(padded, connection_id, schema, f"bench_{uuid.uuid4().hex[:6]}", "catalog")
            report(
                f"full, {load_seconds:g} s a load, {in_flight} at a time",
                run.rows,
                seconds,
                reference_rate,
                text_bytes,
                peak,
            )
        return
    seconds, extracted, peak = timed(lambda: extract(stack, connection_id, schema))
    report("extract", extracted, seconds, reference_rate, text_bytes, peak)
    dataset = f"bench_{uuid.uuid4().hex[:6]}"
    catalog, seconds, run, peak = run_once(stack, connection_id, schema, dataset, "catalog")
    report("full", run.rows, seconds, reference_rate, text_bytes, peak)
    seconds, run, peak = timed(lambda: run_job(stack, catalog["id"]))
    report("replace", run.rows, seconds, reference_rate, text_bytes, peak)
    job, _, _, _ = run_once(stack, connection_id, schema, dataset, "transactional")
    add_rows()
    time.sleep(stack.settings.run_lag_seconds + 1)
    seconds, run, peak = timed(lambda: run_job(stack, job["id"]))
    report("increment", run.rows, seconds, reference_rate, text_bytes * run.rows / rows, peak)


def main():
    args = sys.argv[1:]
    load_seconds = None
    if "--load-seconds" in args:
        at = args.index("--load-seconds")
        load_seconds = float(args[at + 1])
        del args[at : at + 2]
    rows = int(args[0]) if args else 2_000_000
    only = args[1] if len(args) > 1 else None
    extra = rows // 100
    print(f"RSS of this process after its imports: {_rss_mb()} MB")
    with tempfile.TemporaryDirectory() as data, BigQueryEmulator("bench-proj") as url:
        # one stream per run (no fan-out), so the peak RSS is measured against the table's size
        stack = Stack(
            Settings(
                project="bench-proj",
                bigquery_endpoint=url,
                data_dir=Path(data),
                run_lag_seconds=1,
                fanout_rows=10 * rows,
            ),
            run_handler=handle_message,
        )
        if only in (None, "postgresql"):
            bench_postgres(stack, rows, extra, load_seconds)
        if only in (None, "mariadb"):
            bench_mariadb(stack, rows, extra, load_seconds)


def bench_postgres(stack, rows, extra, load_seconds):
    with postgres_database() as (name, db):
        db.run(PG_TABLE)
        db.run(PG_FILL.format(start=1, stop=rows))
        db.run("CREATE INDEX bench_updated_at ON bench (updated_at)")  # a cursor column is indexed
        db.run("VACUUM (ANALYZE) bench")  # now, not as autovacuum in the middle of the measurements
        db.run("CREATE TABLE warmup AS SELECT * FROM bench LIMIT 1000")
        pg = connections.create_connection(
            stack, {"name": "pg", "type": "postgresql", "host": "127.0.0.1", "database": name, "user": "postgres"}
        )
        bench(
            "PostgreSQL",
            stack,
            pg["id"],
            "public",
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Xqc", "COPY (SELECT * FROM bench) TO STDOUT"],
            lambda: db.run(
                PG_FILL.replace("now() - interval '1 hour' - (g || ' milliseconds')::interval", "now()").format(
                    start=rows + 1, stop=rows + extra
                )
            ),
            rows,
            load_seconds,
        )
        db.close()


def settle(cursor, seconds=120):
    """Wait while InnoDB writes the fill's dirty pages back (until fewer than 1,000 are left, or their
    number stops falling), not in the middle of the measurements."""
    deadline, before = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
        dirty = int(cursor.fetchone()[1])
        if dirty < 1000 or dirty == before:
            return
        before = dirty
        time.sleep(2)


def bench_mariadb(stack, rows, extra, load_seconds):
    with mariadb_database() as (name, my):
        with my.cursor() as cursor:
            cursor.execute(MY_TABLE)
            cursor.execute(MY_FILL.format(start=1, stop=rows))
            cursor.execute("CREATE TABLE warmup AS SELECT * FROM bench LIMIT 1000")
            settle(cursor)
        maria = connections.create_connection(
            stack, {"name": "maria", "type": "mysql", "host": "127.0.0.1", "database": name, "user": "root"}
        )

        def add():
            with my.cursor() as cursor:
                cursor.execute(
                    MY_FILL.replace("NOW(6) - INTERVAL 1 HOUR - INTERVAL seq * 1000 MICROSECOND", "NOW(6)").format(
                        start=rows + 1, stop=rows + extra
                    )
                )

        bench(
            "MariaDB",
            stack,
            maria["id"],
            name,
            ["mariadb", "-h", "127.0.0.1", "-u", "root", "--quick", "--batch", "-e", f"SELECT * FROM `{name}`.bench"],
            add,
            rows,
            load_seconds,
        )


if __name__ == "__main__":
    main()
