"""The Cloud Functions entry points, run by functions-framework exactly as deployed."""

import base64
import json
import uuid
from pathlib import Path

import functions_framework
import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

MAIN = str(Path(__file__).parents[2] / "functions" / "main.py")


@pytest.fixture
def function_env(monkeypatch, settings):
    for name, value in {"ETL_STACK": "embedded", "ETL_PROJECT": settings.project,
                        "ETL_BIGQUERY_ENDPOINT": settings.bigquery_endpoint,
                        "ETL_DATA_DIR": str(settings.data_dir)}.items():
        monkeypatch.setenv(name, value)


def test_preview_function_answers_as_the_wizard_route(function_env, client, postgres_db):
    cid = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db}).get_json()["connection"]["id"]
    function = functions_framework.create_app("preview_table", MAIN, "http").test_client()
    response = function.post("/", json={"connection_id": cid, "schema_name": "public", "table_name": "composite_pk"})
    assert response.status_code == 200
    route = client.post(f"/api/connections/{cid}/fetch-table-preview/",
                        json={"schema_name": "public", "table_name": "composite_pk"})
    assert response.get_json() == route.get_json()
    assert response.get_json()["recommended_primary_key"] == ["region", "order_no"]


@pytest.mark.parametrize("body, status, field", [
    ({"schema_name": "public", "table_name": "t"}, 400, "connection_id"),
    ({"connection_id": "nope", "schema_name": "public", "table_name": "t"}, 404, None),
    (None, 400, "body"),
])
def test_preview_function_rejects_bad_requests(function_env, body, status, field):
    function = functions_framework.create_app("preview_table", MAIN, "http").test_client()
    response = function.post("/", json=body) if body is not None else function.post("/", data="x")
    assert response.status_code == status
    payload = response.get_json()
    assert payload["status"] == "error"
    if field:
        assert payload["details"][0]["field"] == field
    assert function.get("/").status_code == 405


def test_create_job_validate_and_run_job_functions(function_env, client, postgres_db, stack):
    cid = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db}).get_json()["connection"]["id"]
    dataset = f"f_{uuid.uuid4().hex[:8]}"
    create = functions_framework.create_app("create_job", MAIN, "http").test_client()
    response = create.post("/", json={
        "name": "fn", "connection_id": cid, "schema_name": "public", "table_name": "composite_pk",
        "selected_columns": ["region", "order_no", "amount"], "load_type": "catalog",
        "destination": {"mode": "new", "dataset": dataset, "table": "orders"}})
    assert response.status_code == 201, response.get_json()
    job_id = response.get_json()["job"]["id"]

    validate = functions_framework.create_app("validate_schema", MAIN, "http").test_client()
    report = validate.post("/", json={"destination_table": f"{dataset}.orders",
                                      "source_columns": [{"name": "region", "bigquery_type": "INT64"}]}).get_json()
    assert report["compatible"] is False
    assert report["warnings"][0] == "Column region: source INT64 into STRING is a widening conversion: values are loaded as their text."
    assert report["errors"] == ["Column order_no (INT64, REQUIRED) is not in the source, and the table requires a value in it."]

    run = functions_framework.create_app("run_job", MAIN, "cloudevent").test_client()
    message = {"message": {"data": base64.b64encode(json.dumps({"job_id": job_id, "trigger": "schedule"}).encode()).decode(),
                           "messageId": "1", "attributes": {"job_id": job_id}},
               "subscription": "projects/p/subscriptions/run-job"}
    event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/test",
                        "specversion": "1.0", "id": "1"}, message)
    headers, body = to_structured(event)
    assert run.post("/", headers=headers, data=body).status_code == 200
    runs = client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]
    assert [(r["status"], r["rows"], r["trigger"]) for r in runs] == [("succeeded", 2, "schedule")]

    unknown = CloudEvent(dict(event.get_attributes()), {"message": {"data": base64.b64encode(b'{"job_id": "nope"}').decode()}})
    headers, body = to_structured(unknown)
    assert run.post("/", headers=headers, data=body).status_code == 200  # terminal: acknowledged, not retried
