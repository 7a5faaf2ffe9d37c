"""Every type of the preview's test tables arrives in BigQuery with the same value."""

import uuid
from decimal import Decimal

import pytest

from etlwizard.run.engine import run_job


@pytest.mark.parametrize(
    "kind, arrays",
    [("postgresql", True), ("postgresql", False), ("mysql", False)],
    ids=["postgresql-row-path", "postgresql-copy-path", "mysql"],
)
def test_all_types_arrive_exactly(client, stack, connect, postgres_db, mysql_db, kind, arrays):
    """PostgreSQL tables with array columns take the row path; the others PostgreSQL's COPY path."""
    db = postgres_db if kind == "postgresql" else mysql_db
    schema = "public" if kind == "postgresql" else mysql_db["database"]
    cid = connect(kind, db, "src")
    preview = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": schema, "table_name": "all_types"}
    ).get_json()
    names = [c["name"] for c in preview["columns"] if arrays or c["mode"] != "REPEATED"]
    dataset = f"x_{uuid.uuid4().hex[:10]}"
    response = client.post(
        "/api/etl/jobs/",
        json={
            "name": "all types",
            "connection_id": cid,
            "schema_name": schema,
            "table_name": "all_types",
            "selected_columns": names,
            "load_type": "catalog",
            "destination": {"mode": "new", "dataset": dataset, "table": "all_types"},
        },
    )
    assert response.status_code == 201, response.get_json()
    job = response.get_json()["job"]
    run = run_job(stack, job["id"]).to_doc()
    assert run["rows"] == 2
    assert run.get("dropped_array_nulls", 0) == (2 if arrays else 0)
    landed = client.get(f"/api/etl/datasets/{dataset}/tables/all_types/?rows=10").get_json()["table"]["rows"]
    types = {c["name"]: c["bigquery_type"] if c["mode"] != "REPEATED" else "ARRAY" for c in preview["columns"]}
    mismatches = [
        (name, source_row[name], row[name])
        for source_row, row in zip(preview["sample_rows"], landed, strict=True)
        for name in names
        if not same(types[name], source_row[name], row[name])
    ]
    assert mismatches == [], "\n".join(map(repr, mismatches))


def same(bigquery_type, source, landed):
    if bigquery_type == "ARRAY":  # BigQuery arrays are never NULL and hold no NULL elements
        return [x for x in source or [] if x is not None] == landed
    if source is None or landed is None:
        return source is landed
    if bigquery_type in ("NUMERIC", "BIGNUMERIC"):  # the emulator pads NUMERIC to nine decimals
        return Decimal(source) == Decimal(landed)
    return source == landed
