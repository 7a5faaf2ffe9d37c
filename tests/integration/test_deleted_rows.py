"""Rows deleted at the source (run/deletes.py): a sweep marks them (_etl_deleted_at) or removes them
in BigQuery, exactly those, never another source's rows in the same table; a row that comes back
lives again; a sweep over a million rows reads only the keys of the buckets that differ."""

from dataclasses import replace
from datetime import datetime

import pytest

from etlwizard.job import COLLECTION, Job
from etlwizard.run.deletes import NO_KEY, sweep
from etlwizard.run.verify import verify
from tests.integration.loading import BIG_ROWS, make_job, run


@pytest.fixture
def events(pg_sql, table):
    pg_sql(
        f"INSERT INTO {table} SELECT g, 'note ' || g, g / 4.0, now() - interval '1 hour' - interval '1 minute' * g "
        "FROM generate_series(1, 500) g"
    )
    return table


def rows(stack, job, marked=False):
    """(id, source id, deleted_at) of every row in the job's table."""
    d = job["destination"]
    table = stack.warehouse.quoted(d["dataset"], d["table"])
    deleted = "_etl_deleted_at" if marked else "NULL"
    return stack.warehouse.query(f"SELECT id, _etl_source_id, {deleted} FROM {table} ORDER BY id, _etl_source_id")


def deleting(stack, job, mode):
    """The job set to mark or remove rows deleted at the source."""
    found = Job.from_doc(stack.store.get(COLLECTION, job["id"]))
    stack.store.put(COLLECTION, job["id"], replace(found, checks=replace(found.checks, deleted_rows=mode)).to_doc())


def test_deleted_rows_are_marked_exactly_and_come_back_to_life(client, stack, pg, events, pg_sql, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    deleting(stack, job, "mark")
    assert run(stack, job["id"])["status"] == "succeeded"
    assert sweep(stack, job["id"], "mark").deleted == 0
    pg_sql(f"DELETE FROM {events} WHERE id IN (3, 250, 499)")

    swept = sweep(stack, job["id"])
    assert (swept.status, swept.deleted) == ("done", 3)
    marked = {row[0] for row in rows(stack, job, marked=True) if row[2] is not None}
    assert marked == {3, 250, 499}
    assert all(isinstance(row[2], datetime) for row in rows(stack, job, marked=True) if row[0] in marked)
    assert len(rows(stack, job, marked=True)) == 500  # marked, not removed
    assert verify(stack, job["id"]).status == "matched"  # marked rows are not the source's any more
    assert sweep(stack, job["id"], "mark").deleted == 0  # once

    watermark = Job.from_doc(stack.store.get(COLLECTION, job["id"])).watermark  # the next window starts there
    pg_sql(f"INSERT INTO {events} VALUES (250, 'back', 1, '{watermark}')")
    assert run(stack, job["id"])["rows"] == 1
    assert {row[0] for row in rows(stack, job, marked=True) if row[2] is not None} == {3, 499}


def test_remove_deletes_them_and_leaves_other_sources_alone(client, stack, pg, events, pg_sql, dataset, table):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    run(stack, job["id"])
    other = f"{events}_other"  # another table, another source, the same destination table
    pg_sql(f"CREATE TABLE {other} (LIKE {events} INCLUDING ALL)")
    try:
        pg_sql(f"INSERT INTO {other} SELECT * FROM {events} WHERE id <= 20")
        second = make_job(
            client,
            pg,
            other,
            dataset,
            name="other",
            primary_key=["id"],
            destination={"mode": "existing", "dataset": dataset, "table": "events"},
        )
        run(stack, second["id"])
        pg_sql(f"DELETE FROM {events} WHERE id IN (5, 6)")
        swept = sweep(stack, job["id"], "remove")
        assert swept.deleted == 2
        found = rows(stack, job)
        ours = [r[0] for r in found if r[1] == job["source_id"]]
        theirs = [r[0] for r in found if r[1] == second["source_id"]]
        assert 5 not in ours and 6 not in ours and len(ours) == 498
        assert theirs == list(range(1, 21))  # ids 5 and 6 of the other source stay
        assert sweep(stack, second["id"], "remove").deleted == 0
    finally:
        pg_sql(f"DROP TABLE {other}")


def test_a_table_without_a_key_cannot_be_swept(client, stack, pg, events, pg_sql, dataset):
    keyless = f"{events}_keyless"
    pg_sql(f"CREATE TABLE {keyless} AS SELECT * FROM {events}")
    try:
        job = make_job(client, pg, keyless, dataset)
        assert job["primary_key"] == []
        run(stack, job["id"])
        swept = sweep(stack, job["id"], "mark")
        assert (swept.status, swept.message) == ("skipped", NO_KEY)
        assert "catalog" in NO_KEY
    finally:
        pg_sql(f"DROP TABLE {keyless}")


def test_a_sweep_over_a_million_rows_reads_only_the_differing_buckets(client, stack, pg, big_table, pg_sql, dataset):
    job = make_job(
        client, pg, big_table, dataset, selected_columns=["id", "note", "at"], timestamp_column="at", primary_key=["id"]
    )
    assert run(stack, job["id"])["rows"] == BIG_ROWS
    gone = [17, 4_096, 99_999, 250_000, 333_333, 500_001, 640_000, 777_777, 912_345, 1_000_000]
    pg_sql(f"DELETE FROM {big_table} WHERE id IN ({', '.join(map(str, gone))})")
    swept = sweep(stack, job["id"], "remove")
    assert swept.deleted == 10
    assert swept.buckets == 16**3 and swept.differing == 10
    # about 244 keys a bucket on each side: the ten buckets' keys, not the table's
    assert swept.keys_read < 10 * 2 * 400, swept
    d = job["destination"]
    assert stack.warehouse.count_rows(d["dataset"], d["table"]) == BIG_ROWS - 10
