"""Verification and the deleted-row sweep (issue 15) against the database's own count and export.

    .venv/bin/python bench/trust.py [rows] [postgresql|mariadb]
        (default 2,000,000 rows, both databases; bin/test or bin/demo made .venv)

Builds a 5-column table (bigint id primary key, int, numeric(12,2), varchar, and updated_at, a
timestamptz or datetime(6) NOT NULL spread over 60 days in an order unrelated to id, indexed) in
throwaway PostgreSQL and MariaDB databases, loads it with a transactional job (primary key id,
cursor updated_at, all history) into the embedded warehouse (the BigQuery emulator), timing the run
for context (with the verification of its window that follows a run), then for each:
  reference  the database's SELECT count(*) of the table, and its export of the fingerprinted
             columns to /dev/null (COPY (SELECT id, updated_at ...) TO STDOUT through psql;
             mariadb --quick --batch): what reading the key and cursor of every row costs anyway
  verify     run/verify.py's verify() over all committed history, median of 3: both sides
             fingerprint every row by cursor day inside their engine; with the time of the source's
             and BigQuery's fingerprint queries within it
  sweep      10 rows spread over the id range deleted at the source, then run/deletes.py's sweep()
             removing them: fingerprints of the key by hash prefix on both sides, then a drill into
             each differing bucket (its keys read from both sides), then one MERGE
  idle sweep the sweep again, with nothing deleted: what a daily sweep costs when it finds nothing
and prints seconds, rows, the ratio to the export (and to count(*)), and where each step's time went
(the product's source and warehouse calls timed by wrapping them, no product code changed).

The emulator reports no bytes processed, so what BigQuery would bill on demand is computed from the
destination table's contents (INT64 and TIMESTAMP 8 bytes a value, NUMERIC 16, STRING 2 + its UTF-8
bytes, NULL none; at least 10 MB a query): the fingerprint query reads the key and the cursor (16
bytes a row) and also _etl_source_id, which it filters on. A MERGE that deletes bills, besides what
it reads, every column of each partition (cursor day) it modifies.

The BigQuery-side seconds are the emulator's (DuckDB on the same two cores), not BigQuery's: its
FORMAT_TIMESTAMP with a time zone, which fingerprints a TIMESTAMP cursor (PostgreSQL's timestamptz),
takes about 10 us a row against 0.3 for a DATETIME (MariaDB's), and it returns a sweep's 65,536
bucket rows (2M rows: 4 hex digits) in about 1.5 s.

google-cloud-bigquery imports pandas when it is installed; the functions' requirements.txt has no
pandas (only the emulator in the dev venv needs it), so the benchmark keeps it out, as in production.
"""

import importlib.abc
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
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
from etlwizard.config import Settings  # noqa: E402
from etlwizard.emulator import BigQueryEmulator  # noqa: E402
from etlwizard.job import runs_collection  # noqa: E402
from etlwizard.run.deletes import sweep  # noqa: E402
from etlwizard.run.engine import handle_message, run_job  # noqa: E402
from etlwizard.run.verify import verify  # noqa: E402
from etlwizard.sources.sql import SqlSource  # noqa: E402
from etlwizard.stack import Stack  # noqa: E402
from etlwizard.warehouse import SOURCE_ID, Warehouse  # noqa: E402

DAYS = 60
SPREAD_MS = DAYS * 86_400_000
# updated_at: an hour ago minus up to 60 days, by a multiplicative hash of id (not in id order)
PG_TABLE = """CREATE TABLE trust (id bigint PRIMARY KEY, qty int, amount numeric(12,2), note varchar(40),
  updated_at timestamptz NOT NULL)"""
PG_FILL = f"""INSERT INTO trust SELECT g, g % 1000, (g % 100000) / 100.0, 'note ' || g,
  now() - interval '1 hour' - ((g * 2654435761) % {SPREAD_MS} || ' milliseconds')::interval
  FROM generate_series(1, {{rows}}) g"""
MY_TABLE = """CREATE TABLE trust (id bigint PRIMARY KEY, qty int, amount decimal(12,2), note varchar(40),
  updated_at datetime(6) NOT NULL, KEY trust_updated_at (updated_at))"""
MY_FILL = f"""INSERT INTO trust SELECT seq, seq % 1000, (seq % 100000) / 100.0, CONCAT('note ', seq),
  UTC_TIMESTAMP(6) - INTERVAL 1 HOUR - INTERVAL (seq * 2654435761) % {SPREAD_MS} * 1000 MICROSECOND
  FROM seq_1_to_{{rows}}"""
COLUMNS = ["id", "qty", "amount", "note", "updated_at"]
DELETED = 10
MIN_BILLED = 10 * 2**20  # BigQuery bills at least 10 MB a query
PRICE_PER_TIB = 6.25  # on-demand, US multi-region, USD


# --- where the time goes -------------------------------------------------------------------------

CALLS = [
    (SqlSource, "fingerprints", "source fingerprints"),
    (SqlSource, "bucket_keys", "source drills"),
    (Warehouse, "fingerprints", "BigQuery fingerprints"),
    (Warehouse, "bucket_keys", "BigQuery drills"),
    (Warehouse, "delete_keys", "BigQuery MERGE"),
]
spent: dict[str, list[float]] = defaultdict(list)  # label -> [seconds, calls]


def _timing(fn, label):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            total = spent.setdefault(label, [0.0, 0])
            total[0] += time.perf_counter() - started
            total[1] += 1

    return timed


for cls, name, label in CALLS:  # the product's own calls, timed where verify() and sweep() make them
    setattr(cls, name, _timing(getattr(cls, name), label))


@contextmanager
def parts():
    """The time spent in each of CALLS while the block runs: {label: (seconds, calls)}."""
    spent.clear()
    out: dict[str, tuple[float, int]] = {}
    yield out
    out.update({label: (seconds, calls) for label, (seconds, calls) in spent.items()})


def measure(fn, times=1):
    """(median seconds, last result, the median run's parts) of `times` calls."""
    results = []
    for _ in range(times):
        with parts() as split:
            started = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - started
        results.append((seconds, result, split))
    results.sort(key=lambda r: r[0])
    return results[len(results) // 2]


def export_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE) as export:
        while export.stdout.read(1 << 20):
            pass
    if export.returncode:
        raise SystemExit(f"{command[0]} failed")
    return time.perf_counter() - started


# --- what BigQuery would bill --------------------------------------------------------------------

FIXED = {"INTEGER": 8, "INT64": 8, "FLOAT": 8, "FLOAT64": 8, "TIMESTAMP": 8, "DATETIME": 8, "DATE": 8, "TIME": 8}
FIXED |= {"NUMERIC": 16, "BIGNUMERIC": 32, "BOOLEAN": 1, "BOOL": 1}


def _size_sql(field) -> str:
    """A column's logical size in a row, as BigQuery counts it for billing (NULL: 0)."""
    name = f"`{field.name}`"
    if field.field_type in FIXED:
        return f"IF({name} IS NULL, 0, {FIXED[field.field_type]})"
    if field.field_type == "JSON":
        return f"IF({name} IS NULL, 0, 2 + BYTE_LENGTH(TO_JSON_STRING({name})))"
    return f"IF({name} IS NULL, 0, 2 + BYTE_LENGTH({name}))"  # STRING, BYTES


def table_bytes(stack, dataset, table, columns=None, where=""):
    """The bytes of these columns (None: all) over the rows `where` selects, as BigQuery bills them."""
    fields = [f for f in stack.warehouse.get_table(dataset, table).schema if columns is None or f.name in columns]
    sql = f"SELECT SUM({' + '.join(_size_sql(f) for f in fields)}) FROM {stack.warehouse.quoted(dataset, table)}"
    return int(stack.warehouse.query(sql + where)[0][0] or 0)


def billed(*scanned):
    """Bytes billed for queries that read these bytes each (BigQuery's 10 MB minimum a query)."""
    return sum(max(MIN_BILLED, b) for b in scanned)


def money(nbytes):
    return f"{nbytes / 2**20:,.1f} MB (${nbytes / 2**40 * PRICE_PER_TIB:.4f})"


# --- the steps -----------------------------------------------------------------------------------


def bench(name, stack, connection_id, schema, rows, count, export, delete):
    print(f"\n{name}: {rows:,} rows, updated_at over {DAYS} days; load average {os.getloadavg()[0]:.1f}")
    dataset = f"trust_{uuid.uuid4().hex[:6]}"
    job = jobs.create_job(
        stack,
        {
            "name": "trust bench",
            "connection_id": connection_id,
            "schema_name": schema,
            "table_name": "trust",
            "selected_columns": COLUMNS,
            "load_type": "transactional",
            "timestamp_column": "updated_at",
            "primary_key": ["id"],
            "historical_backfill": "all",
            "destination": {"mode": "new", "dataset": dataset, "table": "trust"},
            "schedule": {"type": "manual"},
        },
    )
    time.sleep(stack.settings.run_lag_seconds + 1)
    run_seconds, run, run_parts = measure(lambda: run_job(stack, job["id"]))
    assert run.status.value == "succeeded" and run.rows == rows, run
    checked = (stack.store.get(runs_collection(job["id"]), run.id) or {}).get("verification")
    after_run = f"then verified: {checked['status']}" if checked else "not verified after"

    count_seconds, counted, _ = measure(count, 3)
    assert counted == rows, counted
    export_median, _, _ = measure(lambda: export_seconds(export), 3)

    verify_seconds, verified, verify_parts = measure(lambda: verify(stack, job["id"]), 3)
    assert verified.status == "matched" and verified.rows == rows, verified

    # the MERGE bills every column of the partitions (days) holding the deleted rows: measured before
    ids = [rows * (2 * i + 1) // (2 * DELETED) for i in range(DELETED)]
    in_ids = f" WHERE id IN ({', '.join(map(str, ids))})"
    table_sql = stack.warehouse.quoted(dataset, "trust")
    days = f" WHERE DATE(updated_at) IN (SELECT DATE(updated_at) FROM {table_sql}{in_ids})"
    modified_partitions = table_bytes(stack, dataset, "trust", where=days)
    whole_table = table_bytes(stack, dataset, "trust")
    key_cursor = table_bytes(stack, dataset, "trust", ["id", "updated_at"])
    key_source = table_bytes(stack, dataset, "trust", ["id", SOURCE_ID])
    key_cursor_source = table_bytes(stack, dataset, "trust", ["id", "updated_at", SOURCE_ID])

    delete(ids)
    sweep_seconds, swept, sweep_parts = measure(lambda: sweep(stack, job["id"], "remove"))
    assert swept.status == "done" and swept.deleted == DELETED, swept
    assert stack.warehouse.count_rows(dataset, "trust") == rows - DELETED
    idle_seconds, idle, idle_parts = measure(lambda: sweep(stack, job["id"], "remove"))
    assert idle.status == "done" and idle.deleted == 0 and idle.differing == 0, idle

    # The drill: one query for up to a thousand differing buckets, its condition on the key's hash
    # (nothing to prune: both columns whole)
    drills = [key_source] * -(-swept.differing // 1000)
    merge = key_source + modified_partitions  # q' (what it reads) + t' (the partitions it modifies, whole)
    sweep_bytes = billed(key_source, *drills, merge)

    def line(step, seconds, read="", nbytes=None, against=True):
        ratio = f"{seconds / export_median:7.1f}x {seconds / count_seconds:9.1f}x" if against else " " * 19
        bill = f"  {money(nbytes)}" if nbytes is not None else ""
        print(f"  {step:<40} {seconds:8.3f}  {read:<48} {ratio}{bill}".rstrip())

    def split(found, total, rest="the rest (connect, metadata, job store)"):
        for label, (seconds, calls) in found.items():
            line(f"  {label} ({calls} {'query' if calls == 1 else 'queries'})", seconds, against=False)
        line(f"  {rest}", total - sum(s for s, _ in found.values()), against=False)

    print(
        f"  {'step':<40} {'seconds':>8}  {'rows compared / read':<48} {'/export':>8} {'/count(*)':>10}  BigQuery bills"
    )
    line("reference: SELECT count(*)", count_seconds, f"{rows:,} rows counted", against=False)
    line("reference: export of id, updated_at", export_median, f"{rows:,} rows", against=False)
    line("run: all history (for context)", run_seconds, f"{run.rows:,} rows loaded, {after_run}")
    split(run_parts, run_seconds, "the load itself (read, stage, MERGE)")
    line(
        "verify all history (median of 3)",
        verify_seconds,
        f"{verified.rows:,} rows, {verified.buckets} buckets (days)",
        billed(key_cursor_source),
    )
    split(verify_parts, verify_seconds)
    line(
        f"sweep, {DELETED} rows deleted at the source",
        sweep_seconds,
        f"{swept.keys_read:,} keys drilled; {swept.deleted} removed",
        sweep_bytes,
    )
    print(f"  {'':<52}{swept.differing} of {swept.buckets:,} buckets (key hash) differ")
    split(sweep_parts, sweep_seconds)
    line("sweep, nothing deleted", idle_seconds, f"{idle.keys_read:,} keys drilled, 0 differ", billed(key_source))
    split(idle_parts, idle_seconds)
    print(f"  load average {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} cores)")
    print(
        f"  BigQuery bills: computed, the emulator reports no bytes processed (on demand, ${PRICE_PER_TIB}/TiB, "
        f"at least 10 MB a query). Key and cursor: {rows:,} x 16 bytes = {key_cursor / 2**20:,.1f} MB; "
        f"the fingerprint query also reads {SOURCE_ID} (it filters on it): "
        f"{(key_cursor_source - key_cursor) / rows:.0f} bytes a row. A sweep reads id and {SOURCE_ID} "
        f"({key_source / 2**20:,.1f} MB) once for its fingerprints and once for the keys of the differing buckets; "
        f"its MERGE {money(billed(merge))}, of which the partitions it deletes from, whole "
        f"(the deleted rows' days: {modified_partitions / whole_table:.0%} of the table's "
        f"{whole_table / 2**20:,.1f} MB)."
    )


def main():
    args = sys.argv[1:]
    rows = int(args[0]) if args else 2_000_000
    only = args[1] if len(args) > 1 else None
    with tempfile.TemporaryDirectory() as data, BigQueryEmulator("bench-proj") as url:
        stack = Stack(
            Settings(
                project="bench-proj",
                bigquery_endpoint=url,
                data_dir=Path(data),
                run_lag_seconds=1,
                fanout_rows=10 * rows,  # one run, no chunks
            ),
            run_handler=handle_message,  # creating a job registers its (manual) schedule
        )
        if only in (None, "postgresql"):
            bench_postgres(stack, rows)
        if only in (None, "mariadb"):
            bench_mariadb(stack, rows)


def bench_postgres(stack, rows):
    with postgres_database() as (name, db):
        db.run(PG_TABLE)
        db.run(PG_FILL.format(rows=rows))
        db.run("CREATE INDEX trust_updated_at ON trust (updated_at)")  # a cursor column is indexed
        db.run("VACUUM (ANALYZE) trust")  # now, not as autovacuum in the middle of the measurements
        pg = connections.create_connection(
            stack,
            {
                "name": "pg",
                "type": "postgresql",
                "host": "127.0.0.1",
                "database": name,
                "user": "postgres",
                "tls_mode": "disable",
            },
        )
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Xq"]
        bench(
            "PostgreSQL",
            stack,
            pg["id"],
            "public",
            rows,
            lambda: db.run("SELECT count(*) FROM trust")[0][0],
            [*psql, "-c", "COPY (SELECT id, updated_at FROM trust) TO STDOUT"],
            lambda ids: db.run(f"DELETE FROM trust WHERE id IN ({', '.join(map(str, ids))})"),
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


def bench_mariadb(stack, rows):
    with mariadb_database() as (name, my):
        with my.cursor() as cursor:
            cursor.execute(MY_TABLE)
            cursor.execute(MY_FILL.format(rows=rows))
            cursor.execute("ANALYZE TABLE trust")
            cursor.fetchall()
            settle(cursor)
        maria = connections.create_connection(
            stack,
            {
                "name": "maria",
                "type": "mysql",
                "host": "127.0.0.1",
                "database": name,
                "user": "root",
                "tls_mode": "disabled",
            },
        )

        def run(sql):
            with my.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()

        bench(
            "MariaDB",
            stack,
            maria["id"],
            name,
            rows,
            lambda: run("SELECT count(*) FROM trust")[0][0],
            [
                "mariadb",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "--quick",
                "--batch",
                "-e",
                f"SELECT id, updated_at FROM `{name}`.trust",
            ],
            lambda ids: run(f"DELETE FROM trust WHERE id IN ({', '.join(map(str, ids))})"),
        )


if __name__ == "__main__":
    main()
