"""What the run tests share: a job over the `table` fixture's events table, running it here, and
what landed in BigQuery."""

import json
from datetime import datetime, timedelta, timezone

from etlwizard.run.engine import run_job

BIG_ROWS = 1_000_000  # the big_table fixture's: a run over it takes seconds, long enough to cut off


def make_job(client, connection_id, table, dataset, **overrides):
    body = {
        "name": "events",
        "connection_id": connection_id,
        "schema_name": "public",
        "table_name": table,
        "selected_columns": ["id", "note", "amount", "updated_at"],
        "load_type": "transactional",
        "timestamp_column": "updated_at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": "events"},
        "schedule": {"type": "manual"},
    }
    body.update(overrides)
    response = client.post("/api/etl/jobs/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["job"]


def ago(minutes):
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat()


def destination(client, dataset, table="events"):
    described = client.get(f"/api/etl/datasets/{dataset}/tables/{table}/?rows=1000").get_json()["table"]
    return sorted(
        ({k: v for k, v in r.items() if not k.startswith("_etl_")} for r in described["rows"]),
        key=lambda r: (r.get("id", 0), json.dumps(r, sort_keys=True)),
    )


def run(stack, job_id, trigger="manual"):
    """Run the job here; the run as its history shows it."""
    done = run_job(stack, job_id, trigger)
    return done and done.to_doc()


def orders_job(connection_id, dataset, /, **overrides):
    """The body of a job over the test database's public.composite_pk (tests/integration/sql)."""
    return {
        "name": "Orders",
        "connection_id": connection_id,
        "schema_name": "public",
        "table_name": "composite_pk",
        "selected_columns": ["region", "order_no", "amount", "modified_at"],
        "load_type": "transactional",
        "timestamp_column": "modified_at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": "orders"},
        "schedule": {"type": "daily", "time": "02:30", "timezone": "Europe/Berlin"},
        **overrides,
    }
