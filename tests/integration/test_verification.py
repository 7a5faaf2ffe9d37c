"""Verification finds what went wrong in the destination behind the product's back, says which bucket,
and repair puts it right (run/verify.py): a row deleted there, a row added there, a row whose cursor
changed there; for a transactional job by the cursor's day, for a catalog job by key hash."""

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pymysql
import pytest

from etlwizard.job import COLLECTION, Job
from etlwizard.run.verify import repair, verify
from tests.integration.loading import destination, make_job, run

DAY0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def bq(stack, job, sql):
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    return stack.warehouse.query(sql.replace("{t}", stack.warehouse.quoted(dataset, table)))


def day_of(pg_sql, table, row_id):
    return pg_sql(f"SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM {table} WHERE id = {row_id}")[0][0]


def source_rows(pg_sql, table):
    found = pg_sql(f"SELECT id, updated_at FROM {table} ORDER BY id")
    return [(i, at) for i, at in found]


def landed(client, dataset):
    return [(r["id"], datetime.fromisoformat(r["updated_at"])) for r in destination(client, dataset)]


def test_a_transactional_job_matches_then_each_tampering_is_found_and_repaired(
    client, stack, pg, events, pg_sql, dataset
):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    assert run(stack, job["id"])["status"] == "succeeded"
    first = verify(stack, job["id"])
    assert (first.status, first.rows, first.buckets, first.mismatched) == ("matched", 300, 10, [])

    # a row deleted in BigQuery: its day differs, one row fewer there
    bq(stack, job, "DELETE FROM {t} WHERE id = 10")
    found = verify(stack, job["id"])
    assert found.status == "mismatched"
    mismatched = [(m.bucket, m.source.rows, m.destination.rows) for m in found.mismatched]
    assert mismatched == [(day_of(pg_sql, events, 10), 30, 29)]  # ids 1-30 fall on May 1st
    fixed = repair(stack, job["id"], found)
    assert fixed.status == "matched", fixed
    assert landed(client, dataset) == source_rows(pg_sql, events)

    # a row added in BigQuery under this job's source: one row more on its day
    bq(
        stack,
        job,
        "INSERT INTO {t} (id, note, amount, updated_at, _etl_source_id, _etl_run_id, _etl_loaded_at) "
        "VALUES (9999, 'stray', 1, TIMESTAMP '2024-05-03 12:00:00+00', "
        f"'{job['source_id']}', 'x', CURRENT_TIMESTAMP())",
    )
    found = verify(stack, job["id"])
    assert [(m.bucket, m.destination.rows - m.source.rows) for m in found.mismatched] == [("2024-05-03", 1)]
    assert repair(stack, job["id"], found).status == "matched"
    assert landed(client, dataset) == source_rows(pg_sql, events)

    # a row whose cursor changed in BigQuery: its old day lacks it, its new day has one too many
    bq(stack, job, "UPDATE {t} SET updated_at = TIMESTAMP '2024-05-05 08:00:00+00' WHERE id = 20")
    found = verify(stack, job["id"])
    old_day = day_of(pg_sql, events, 20)
    assert {m.bucket for m in found.mismatched} == {old_day, "2024-05-05"}
    assert repair(stack, job["id"], found).status == "matched"
    assert landed(client, dataset) == source_rows(pg_sql, events)


def test_only_the_committed_window_is_compared(client, stack, pg, events, pg_sql, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    done = run(stack, job["id"])
    # rows the next run will load (their cursor is past the watermark) are no mismatch
    pg_sql(f"INSERT INTO {events} VALUES (1000, 'new', 1, now())")
    assert verify(stack, job["id"]).status == "matched"
    window = verify(stack, job["id"], done["window"]["lower"], done["window"]["upper"])
    assert (window.status, window.rows) == ("matched", 300)


def test_a_catalog_job_is_verified_by_key_hash_and_repaired(client, stack, pg, events, pg_sql, dataset):
    job = make_job(client, pg, events, dataset, load_type="catalog", timestamp_column=None, primary_key=["id"])
    assert run(stack, job["id"])["status"] == "succeeded"
    assert verify(stack, job["id"]).status == "matched"
    bq(stack, job, "DELETE FROM {t} WHERE id IN (7, 8)")
    found = verify(stack, job["id"])
    assert found.status == "mismatched" and 1 <= len(found.mismatched) <= 2
    assert sum(m.source.rows - m.destination.rows for m in found.mismatched) == 2
    assert all(len(m.bucket) == 1 for m in found.mismatched)  # hex prefixes: 16 buckets for 300 rows
    assert repair(stack, job["id"], found).status == "matched"
    assert landed(client, dataset) == source_rows(pg_sql, events)


def test_a_failure_to_reach_the_source_is_a_failed_verification(client, stack, connect, postgres_db, events, dataset):
    cid = connect("postgresql", postgres_db, "soon gone")
    job = make_job(client, cid, events, dataset, primary_key=["id"])
    run(stack, job["id"])
    stack.store.put("connections", cid, {**stack.store.get("connections", cid), "port": 1})
    stack.pools.drop(cid)
    result = verify(stack, job["id"])
    assert result.status == "failed" and "cannot reach" in result.message


@pytest.fixture
def maria_events(mysql_db):
    db = pymysql.connect(password="", autocommit=True, **{k: v for k, v in mysql_db.items()})
    name = f"events_{uuid.uuid4().hex[:8]}"
    with db.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, note text, amount decimal(12,2), "
            "updated_at datetime(6) NOT NULL)"
        )
        rows = [(i, f"note {i}", i / 4, (DAY0 + timedelta(minutes=47 * i)).replace(tzinfo=None)) for i in range(1, 301)]
        cursor.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s)", rows)
    yield name
    with db.cursor() as cursor:
        cursor.execute(f"DROP TABLE {name}")
    db.close()


def test_mariadb_matches_and_a_tampered_day_is_repaired(client, stack, maria, mysql_db, maria_events, dataset):
    job = make_job(client, maria, maria_events, dataset, schema_name=mysql_db["database"], primary_key=["id"])
    assert run(stack, job["id"])["status"] == "succeeded"
    assert verify(stack, job["id"]).status == "matched"
    bq(stack, job, "UPDATE {t} SET note = 'changed', updated_at = DATETIME '2024-05-02 01:00:00' WHERE id = 3")
    found = verify(stack, job["id"])
    assert {m.bucket for m in found.mismatched} == {"2024-05-01", "2024-05-02"}
    assert repair(stack, job["id"], found).status == "matched"
    assert ("changed",) not in [(r["note"],) for r in destination(client, dataset)]


def checking(stack, job_id, **checks):
    """The job's checks as the API sets them (job.Checks)."""
    found = Job.from_doc(stack.store.get(COLLECTION, job_id))
    stack.store.put(COLLECTION, job_id, replace(found, checks=replace(found.checks, **checks)).to_doc())


def runs(client, job_id):
    response = client.get(f"/api/etl/jobs/{job_id}/runs/")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["runs"]


def test_each_run_is_verified_and_a_mismatch_repaired_when_asked(client, stack, pg, events, pg_sql, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    run(stack, job["id"])
    (first,) = runs(client, job["id"])
    assert first["verification"]["status"] == "matched" and first["verification"]["rows"] == 300

    watermark = Job.from_doc(stack.store.get(COLLECTION, job["id"])).watermark
    pg_sql(f"INSERT INTO {events} VALUES (301, 'late', 1, '{watermark}')")  # the next window's first row
    bq(stack, job, "DELETE FROM {t} WHERE id = 5")  # outside the next window: not seen by its check
    run(stack, job["id"])
    latest = runs(client, job["id"])[0]
    assert latest["rows"] == 1 and latest["verification"]["status"] == "matched"

    assert verify(stack, job["id"]).status == "mismatched"  # all history finds it
    checking(stack, job["id"], repair=True)
    watermark = Job.from_doc(stack.store.get(COLLECTION, job["id"])).watermark
    pg_sql(f"INSERT INTO {events} VALUES (302, 'later', 1, '{watermark}')")
    bq(  # a stray row in the window the next run loads, as if written behind the product's back
        stack,
        job,
        "INSERT INTO {t} (id, note, amount, updated_at, _etl_source_id, _etl_run_id, _etl_loaded_at) "
        f"VALUES (9999, 'stray', 1, TIMESTAMP '{watermark}', '{job['source_id']}', 'x', CURRENT_TIMESTAMP())",
    )
    run(stack, job["id"])
    latest = runs(client, job["id"])[0]
    assert latest["verification"]["status"] == "mismatched"
    assert [m["destination_rows"] - m["source_rows"] for m in latest["verification"]["mismatched"]] == [1]
    assert latest["verification"]["repaired"]["status"] == "matched"
    assert 9999 not in [r["id"] for r in destination(client, dataset)]
