"""The row path every SQL source has (read_batches over stream()), against real PostgreSQL and
MariaDB: the same values as the bulk reader, in batches, within a window, and without holding
the source's catalog connection."""

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from etlwizard.columnar import arrow_schema
from etlwizard.config import Settings
from etlwizard.model import Connection
from etlwizard.reach.options import Credentials
from etlwizard.sources import open_source

SETTINGS = Settings(connect_timeout=3, query_timeout=30)
# A query of 1,000 generated rows, in each database's own way
NUMBERS = {"postgresql": "SELECT g FROM generate_series(1, 1000) g", "mysql": "SELECT seq FROM seq_1_to_1000"}
# The all_types tables' updated_at: row 1 on 2024-03-01, row 2 at 2024-03-02 00:00
MARCH_2 = {"postgresql": datetime(2024, 3, 2, tzinfo=timezone.utc), "mysql": datetime(2024, 3, 2)}


@pytest.fixture(params=["postgresql", "mysql"])
def source(request, postgres_db, mysql_db):
    db = postgres_db if request.param == "postgresql" else mysql_db
    connection = Connection(
        id="c1",
        name="src",
        type=request.param,
        host=db["host"],
        port=db["port"],
        database=db["database"],
        user=db["user"],
    )
    with open_source(connection, Credentials(), SETTINGS) as opened:
        yield opened


def schema(source):
    return "public" if source.type == "postgresql" else source.connection.database


def test_the_row_path_reads_what_the_bulk_reader_reads(source, monkeypatch):
    meta = source.fetch_table_metadata(schema(source), "all_types")
    columns = [c for c in meta.columns if c.mode != "REPEATED"]  # arrays take the row path anyway

    def read():
        batches = [
            batch for batch, _ in source.read_arrow(meta, columns, None, None, None, 1000, arrow_schema(columns, False))
        ]
        return pa.Table.from_batches(batches).sort_by("id").to_pylist()

    bulk = read()
    monkeypatch.setattr(source, "bulk_unavailable", lambda columns: "the test says so")
    rows = read()
    assert len(rows) == 2
    assert rows == bulk


def test_the_row_path_yields_batches_of_the_size_asked(source):
    sizes = [len(rows) for rows in source.stream(NUMBERS[source.type], 300)]
    assert sizes == [300, 300, 300, 100]


def test_the_catalog_connection_answers_while_rows_stream(source):
    batches = source.stream(NUMBERS[source.type], 300)
    first = next(batches)
    assert source.count_rows(source.fetch_table_metadata(schema(source), "no_pk")) == 2
    rest = [row for rows in batches for row in rows]
    assert [row[0] for row in [*first, *rest]] == list(range(1, 1001))


def test_a_read_left_early_leaves_the_source_usable(source):
    batches = source.stream(NUMBERS[source.type], 10)
    assert len(next(batches)) == 10
    batches.close()
    assert source.count_rows(source.fetch_table_metadata(schema(source), "no_pk")) == 2


def test_the_row_path_reads_only_its_window(source):
    meta = source.fetch_table_metadata(schema(source), "all_types")
    id_, cursor = (next(c for c in meta.columns if c.name == name) for name in ("id", "updated_at"))
    before = [row for rows in source.read_batches(meta, [id_], cursor, None, MARCH_2[source.type], 10) for row in rows]
    after = [row for rows in source.read_batches(meta, [id_], cursor, MARCH_2[source.type], None, 10) for row in rows]
    assert ([tuple(r) for r in before], [tuple(r) for r in after]) == ([(1,)], [(2,)])
