"""The README's function calls: each example payload in examples/functions/ fed to the entry point it
is written for, through functions-framework as deployed, against a real PostgreSQL table like the
one the examples name (public.orders). The examples' placeholder ids become the ones made here."""

import base64
import json
from pathlib import Path

import functions_framework
import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

ROOT = Path(__file__).parents[2]
MAIN = str(ROOT / "functions" / "main.py")
EXAMPLES = ROOT / "examples" / "functions"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture
def shop_db(throwaway_postgres):
    """A throwaway database holding public.orders, the table the examples load; the example
    backfills the last 30 days, so one of its three orders is older than that."""
    return throwaway_postgres(
        "etl_shop",
        "CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2), "
        "status text, updated_at timestamptz NOT NULL)",
        "INSERT INTO orders SELECT id, 7, 19.99, 'paid', now() - days * interval '1 day' "
        "FROM (VALUES (1, 40), (2, 3), (3, 1)) AS o(id, days)",
    )


def example(name: str, **ids: str) -> bytes:
    """examples/functions/<name>.json with its placeholders (CONNECTION_ID, JOB_ID) filled in."""
    text = (EXAMPLES / f"{name}.json").read_text()
    for placeholder, value in ids.items():
        text = text.replace(placeholder, value)
    json.loads(text)  # still valid JSON
    return text.encode()


def http_function(target: str):
    return functions_framework.create_app(target, MAIN, "http").test_client()


def test_each_example_payload_does_what_the_readme_says(function_env, client, shop_db):
    connection = client.post("/api/connections/", json={"name": "shop", "type": "postgresql", **shop_db})
    connection_id = connection.get_json()["connection"]["id"]

    preview = http_function("preview_table").post(
        "/", data=example("preview_table", CONNECTION_ID=connection_id), content_type="application/json"
    )
    assert preview.status_code == 200, preview.get_json()
    table = preview.get_json()
    assert [c["name"] for c in table["columns"]] == ["order_id", "customer_id", "amount", "status", "updated_at"]
    assert (table["total_rows"], table["recommended_primary_key"], table["recommended_timestamp_column"]) == (
        3,
        ["order_id"],
        "updated_at",
    )

    created = http_function("create_job").post(
        "/", data=example("create_job", CONNECTION_ID=connection_id), content_type="application/json"
    )
    assert created.status_code == 201, created.get_json()
    job = created.get_json()["job"]
    assert (job["name"], job["destination"], job["cron"]) == (
        "Shop orders",
        {"mode": "new", "dataset": "shop", "table": "orders"},
        "0 2 * * *",
    )

    report = http_function("validate_schema").post(
        "/", data=example("validate_schema"), content_type="application/json"
    )
    assert report.status_code == 200
    assert report.get_json()["compatible"] is True
    assert [c["name"] for c in report.get_json()["can_alter"]] == ["coupon"]  # the one column the table lacks

    # run_job as deployed: Pub/Sub pushes the message (the example is its data) to the function ...
    data = base64.b64encode(example("run_job", JOB_ID=job["id"])).decode()
    run = functions_framework.create_app("run_job", MAIN, "cloudevent").test_client()
    push = {
        "message": {"data": data, "messageId": "1", "attributes": {"job_id": job["id"]}},
        "subscription": "projects/my-project/subscriptions/etl-run-job-run-job",
    }
    assert run.post("/", json=push).status_code == 200
    runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert [(r["status"], r["rows"], r["trigger"]) for r in runs] == [("succeeded", 2, "manual")]
    loaded = client.get("/api/etl/datasets/shop/tables/orders/?rows=10").get_json()["table"]
    assert [row["order_id"] for row in loaded["rows"]] == [2, 3]

    # ... or `gcloud functions call run-job --cloud-event=...` sends it as a CloudEvent.
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "specversion": "1.0",
            "source": "//pubsub.googleapis.com/projects/my-project/topics/etl-run-job",
            "id": "2",
        },
        {"message": {"data": data}},
    )
    headers, body = to_structured(event)
    assert run.post("/", headers=headers, data=body).status_code == 200
    runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert [(r["status"], r["rows"]) for r in runs] == [("succeeded", 0), ("succeeded", 2)]  # nothing new
