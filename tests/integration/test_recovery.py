"""Runs that die or are stopped: a dead worker's job is taken over once its lease lapses, a restart
finds its own cut-off runs, staging tables no run owns are swept, a stopping process interrupts
its runs and frees their jobs, and a run that lost its lease never commits. (Killing a real demo
process: test_demo_process.py.)"""

import threading
import time
from datetime import timedelta

import pytest

from etlwizard.errors import Interrupted
from etlwizard.jobs import get_job
from etlwizard.run.engine import handle_message
from etlwizard.run.records import get_run, save_run
from etlwizard.run.recovery import recover
from etlwizard.run.state import Run, RunMessage, RunStatus
from tests.integration.loading import ago, destination, make_job, run


def left_by_a_dead_worker(stack, job, minutes_silent):
    """What a worker killed mid-run leaves: its run `running`, its lease, its staging table."""
    dead = Run.new(job["id"], "manual", stack.clock() - timedelta(minutes=minutes_silent))
    save_run(stack, dead)
    expires = (stack.clock() - timedelta(minutes=minutes_silent)).isoformat()
    stack.store.transact("jobs", job["id"], lambda j: {**j, "lease": {"run_id": dead.id, "expires_at": expires}})
    dataset, table = job["destination"]["dataset"], job["destination"]["table"]
    staging = f"{table}__etl_staging_{dead.id}"
    stack.warehouse.create_staging(dataset, staging, get_job(stack, job["id"]).columns)
    return dead, staging


def tables_in(client, dataset):
    return [t["table_name"] for t in client.get(f"/api/etl/datasets/{dataset}/tables/").get_json()["tables"]]


def test_a_dead_workers_job_is_taken_over_once_its_lease_lapses(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}'), (2, 'b', 2, '{ago(50)}')")
    job = make_job(client, pg, table, dataset)
    dead, staging = left_by_a_dead_worker(stack, job, minutes_silent=3)
    assert staging not in tables_in(client, dataset)  # the datasets API never lists a run's working table

    taking_over = run(stack, job["id"])
    assert (taking_over["status"], taking_over["rows"]) == ("succeeded", 2)
    abandoned = get_run(stack, job["id"], dead.id)
    assert abandoned.status is RunStatus.ABANDONED
    assert abandoned.error.startswith("Its worker stopped: no heartbeat since ")
    assert abandoned.error.endswith(f"Nothing was committed; run {taking_over['id']} took the job over.")
    assert stack.warehouse.staging_tables(dataset) == []
    assert [r["id"] for r in destination(client, dataset)] == [1, 2]
    assert get_job(stack, job["id"]).lease is None


def test_a_lease_still_beating_is_not_taken_over(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    dead, staging = left_by_a_dead_worker(stack, job, minutes_silent=-1)  # its lease runs another minute
    assert run(stack, job["id"])["status"] == "skipped"
    assert get_run(stack, job["id"], dead.id).status is RunStatus.RUNNING
    assert stack.warehouse.staging_tables(dataset) == [staging]


def test_a_restart_ends_the_runs_it_cut_off_and_sweeps_their_tables(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    job = make_job(client, pg, table, dataset)
    dead, _ = left_by_a_dead_worker(stack, job, minutes_silent=-1)  # not lapsed yet: only a restart tells
    orphan = f"events__etl_staging_{'f' * 12}"  # a run killed between making and dropping its table
    stack.warehouse.create_staging(dataset, orphan, get_job(stack, job["id"]).columns)

    recover(stack)
    stopped = get_run(stack, job["id"], dead.id)
    assert stopped.status is RunStatus.ABANDONED
    assert stopped.error == "The process running it stopped (found at start-up). Nothing was committed."
    assert get_job(stack, job["id"]).lease is None
    assert stack.warehouse.staging_tables(dataset) == []
    assert run(stack, job["id"])["rows"] == 1  # the job runs at once


def test_a_stopping_process_interrupts_its_run_and_frees_the_job(client, make_stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 50) g")
    stack = make_stack(chunk_rows=10, batch_rows=10)
    job = make_job(client, pg, table, dataset)
    load = stack.warehouse.load_parquet

    def stop_midway(*args):
        stack.stopping.set()  # SIGTERM arrives while the first file loads
        return load(*args)

    stack.warehouse.load_parquet = stop_midway
    started = time.monotonic()
    with pytest.raises(Interrupted):
        run(stack, job["id"])
    assert time.monotonic() - started < 10
    (interrupted,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert interrupted["status"] == "interrupted"
    assert interrupted["error"] == "The run was interrupted: its process is shutting down. Nothing was committed."
    stored = get_job(stack, job["id"])
    assert stored.lease is None and stored.watermark is None
    assert destination(client, dataset) == [] and stack.warehouse.staging_tables(dataset) == []
    with pytest.raises(Interrupted):  # and it starts no new run: Pub/Sub delivers the message again
        handle_message(stack, RunMessage(job["id"]).to_bytes())


def test_a_run_that_lost_its_lease_never_commits(client, make_stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 50) g")
    stack = make_stack(chunk_rows=10, batch_rows=10, lease_seconds=1)
    job = make_job(client, pg, table, dataset)
    load, taken = stack.warehouse.load_parquet, threading.Event()

    def taken_over(*args):
        if not taken.is_set():  # as a run that took the lapsed lease over would, while this one hung
            later = (stack.clock() + timedelta(minutes=5)).isoformat()
            stack.store.transact("jobs", job["id"], lambda j: {**j, "lease": {"run_id": "other", "expires_at": later}})
            taken.set()
            time.sleep(0.6)  # a heartbeat comes in the meantime and finds the lease gone
        return load(*args)

    stack.warehouse.load_parquet = taken_over
    with pytest.raises(Interrupted):
        run(stack, job["id"])
    (stopped,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert stopped["status"] == "interrupted" and "lost its job's lease to another run" in stopped["error"]
    assert destination(client, dataset) == []
    assert get_job(stack, job["id"]).lease.run_id == "other"  # the other run's lease stays its own


def test_a_stopping_process_cancels_a_source_query_still_running(client, stack, pg, pg_sql, table, dataset):
    """A read that returns no batch for a long while (a slow query) is cancelled at the source, not
    waited out: the run is interrupted within seconds of the stop."""
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}')")
    slow = f"slow_{table}"
    pg_sql(f"CREATE VIEW {slow} AS SELECT {table}.* FROM {table}, pg_sleep(60)")
    try:
        job = make_job(client, pg, slow, dataset, load_type="catalog", timestamp_column=None)
        threading.Timer(2, stack.stopping.set).start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            run(stack, job["id"])
        assert time.monotonic() - started < 30  # not the minute the query would have taken
        (interrupted,) = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
        assert interrupted["status"] == "interrupted"
        assert get_job(stack, job["id"]).lease is None
    finally:
        pg_sql(f"DROP VIEW {slow}")
