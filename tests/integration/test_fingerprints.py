"""Fingerprints agree across engines (fingerprint.py): each column of the all-types tables that may be
a key or a cursor, fingerprinted by PostgreSQL or MariaDB and, after a load, by BigQuery (the
emulator), gives the same buckets; a changed value gives another."""

import uuid

import pytest

from etlwizard import fingerprint
from etlwizard.connections import open_connection
from etlwizard.fingerprint import FINGERPRINTED, Spec
from etlwizard.run.engine import run_job

CURSOR_TYPES = ("DATE", "DATETIME", "TIMESTAMP")


@pytest.fixture(params=["postgresql", "mysql"])
def loaded(request, client, stack, connect, postgres_db, mysql_db):
    """all_types loaded by a catalog job; (stack, job, table metadata)."""
    kind = request.param
    db = postgres_db if kind == "postgresql" else mysql_db
    schema = "public" if kind == "postgresql" else mysql_db["database"]
    cid = connect(kind, db, "src")
    with open_connection(stack, cid) as source:
        meta = source.fetch_table_metadata(schema, "all_types")
    names = [c.name for c in meta.columns if c.mode != "REPEATED"]
    dataset = f"f_{uuid.uuid4().hex[:10]}"
    body = {
        "name": "all types",
        "connection_id": cid,
        "schema_name": schema,
        "table_name": "all_types",
        "selected_columns": names,
        "load_type": "catalog",
        "destination": {"mode": "new", "dataset": dataset, "table": "all_types"},
    }
    created = client.post("/api/etl/jobs/", json=body)
    assert created.status_code == 201, created.get_json()
    job = created.get_json()["job"]
    assert run_job(stack, job["id"]).to_doc()["status"] == "succeeded"
    return stack, job, meta


def both_sides(stack, job, meta, spec, column):
    """The buckets of the rows where `column` holds a value, by the source and by BigQuery."""
    with open_connection(stack, job["connection_id"]) as source:
        at_source = source.fingerprints(meta, spec, None, None, None)
    destination = job["destination"]
    window = fingerprint.Window(column, None, None)
    in_bigquery = stack.warehouse.fingerprints(
        destination["dataset"], destination["table"], spec, job["source_id"], window
    )
    return at_source, in_bigquery


def test_every_key_and_cursor_type_fingerprints_alike_in_both_engines(loaded):
    stack, job, meta = loaded
    checked = []
    for column in meta.columns:
        if column.bigquery_type not in FINGERPRINTED or column.mode == "REPEATED":
            continue
        as_key = Spec((column,), None, hex_digits=1)
        at_source, in_bigquery = both_sides(stack, job, meta, as_key, column)
        assert at_source and at_source == in_bigquery, (column.name, column.source_type, at_source, in_bigquery)
        if column.bigquery_type in CURSOR_TYPES:
            as_cursor = Spec((meta.column("id"),), column)
            at_source, in_bigquery = both_sides(stack, job, meta, as_cursor, column)
            assert at_source == in_bigquery, (column.name, column.source_type, at_source, in_bigquery)
        checked.append(column.bigquery_type)
    assert set(checked) >= {"INT64", "STRING", "NUMERIC", "DATE", "DATETIME", "TIMESTAMP", "BYTES"}, checked


def test_a_changed_value_changes_its_bucket(loaded):
    stack, job, meta = loaded
    destination = job["destination"]
    table = stack.warehouse.quoted(destination["dataset"], destination["table"])
    key = Spec((meta.column("id"),), meta.column("updated_at"))
    window = fingerprint.Window(meta.column("updated_at"), None, None)
    before = stack.warehouse.fingerprints(destination["dataset"], destination["table"], key, job["source_id"], window)
    stack.warehouse.query(
        f"UPDATE {table} SET updated_at = TIMESTAMP_ADD(updated_at, INTERVAL 1 MICROSECOND) WHERE id = 1"
    )
    after = stack.warehouse.fingerprints(destination["dataset"], destination["table"], key, job["source_id"], window)
    changed = fingerprint.compare(before, after)
    assert [m.bucket for m in changed] == [next(iter(before))] or len(changed) == 1, changed
    assert changed[0].source.rows == changed[0].destination.rows  # same count, other fingerprint
