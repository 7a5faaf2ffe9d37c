"""Preview latency for a 200-column table on the embedded stack (PostgreSQL and MariaDB sources).

    bin/bench-preview            (or: .venv/bin/python bench/preview.py after bin/test set up .venv)

Creates a throwaway database on each local server, a 200-column table of 10,000 rows, and times the
contract route POST /api/connections/<id>/fetch-table-preview/ through the wizard's app.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1] / "shared"), str(Path(__file__).parents[1])]

from throwaway import mariadb_database, postgres_database  # noqa: E402

from etlwizard.config import Settings  # noqa: E402
from etlwizard.stack import Stack  # noqa: E402
from web.app import create_app  # noqa: E402

COLUMNS = 200
ROWS = 10_000
CALLS = 30
KINDS = ["integer", "numeric(12,2)", "text", "timestamptz", "boolean"]
MY_KINDS = ["int", "decimal(12,2)", "varchar(40)", "datetime(6)", "tinyint(1)"]


def column_defs(kinds):
    return ", ".join(f"c{i:03d} {kinds[i % len(kinds)]}" for i in range(COLUMNS - 1))  # + id


def time_previews(client, connection_id, schema):
    body = {"schema_name": schema, "table_name": "wide"}
    path = f"/api/connections/{connection_id}/fetch-table-preview/"
    assert client.post(path, json=body).status_code == 200  # warm-up
    seconds = []
    for _ in range(CALLS):
        started = time.perf_counter()
        response = client.post(path, json=body)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200 and len(response.get_json()["columns"]) == COLUMNS
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(len(seconds) * 0.95) - 1] * 1000


def main():
    with tempfile.TemporaryDirectory() as data:
        client = create_app(stack=Stack(Settings(data_dir=Path(data)))).test_client()

        with postgres_database() as (name, db):
            db.run(f"CREATE TABLE wide (id bigint PRIMARY KEY, {column_defs(KINDS)})")
            values = ", ".join(
                [
                    "g",
                    *(
                        ["g", "g * 1.25", "'text ' || g", "now() - g * interval '1 minute'", "g % 2 = 0"][i % 5]
                        for i in range(COLUMNS - 1)
                    ),
                ]
            )
            db.run(f"INSERT INTO wide SELECT {values} FROM generate_series(1, {ROWS}) g")
            db.run("ANALYZE wide")
            db.close()
            cid = client.post(
                "/api/connections/",
                json={"name": "pg", "type": "postgresql", "host": "127.0.0.1", "database": name, "user": "postgres"},
            ).get_json()["connection"]["id"]
            pg = time_previews(client, cid, "public")

        with mariadb_database() as (name, my):
            with my.cursor() as cursor:
                cursor.execute(f"CREATE TABLE `{name}`.wide (id bigint PRIMARY KEY, {column_defs(MY_KINDS)})")
                row = ["%s"] * COLUMNS
                samples = [1, 1.25, "text", "2024-01-01 00:00:00.000001", 1]
                data_rows = [[i, *(samples[c % 5] for c in range(COLUMNS - 1))] for i in range(1, ROWS + 1)]
                cursor.executemany(f"INSERT INTO `{name}`.wide VALUES ({', '.join(row)})", data_rows)
                cursor.execute(f"ANALYZE TABLE `{name}`.wide")
            cid = client.post(
                "/api/connections/",
                json={"name": "maria", "type": "mysql", "host": "127.0.0.1", "database": name, "user": "root"},
            ).get_json()["connection"]["id"]
            maria = time_previews(client, cid, name)

    print(f"preview of a {COLUMNS}-column, {ROWS:,}-row table, {CALLS} calls each (target: < 300 ms)")
    for label, (median, p95) in (("PostgreSQL", pg), ("MariaDB", maria)):
        print(f"  {label:<11} median {median:6.1f} ms   p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main()
