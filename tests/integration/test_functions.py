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


def test_preview_function_answers_as_the_wizard_route(function_env, client, pg):
    cid = pg
    function = functions_framework.create_app("preview_table", MAIN, "http").test_client()
    response = function.post("/", json={"connection_id": cid, "schema_name": "public", "table_name": "composite_pk"})
    assert response.status_code == 200
    route = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": "public", "table_name": "composite_pk"}
    )
    assert response.get_json() == route.get_json()
    assert response.get_json()["recommended_primary_key"] == ["region", "order_no"]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"schema_name": "public", "table_name": "t"}, 400, "connection_id"),
        ({"connection_id": "nope", "schema_name": "public", "table_name": "t"}, 400, "connection_id"),
        ({"connection_id": "0123456789ab", "schema_name": "public", "table_name": "t"}, 404, None),
        (b"x", 400, "body"),
        (b"[" * 10_000 + b"]" * 10_000, 400, "body"),
        (b'{"a": "' + b"x" * 2_000_000 + b'"}', 413, None),
    ],
)
def test_preview_function_rejects_bad_requests(function_env, body, status, field):
    """Its body read as the API reads it: no 500, however deep or large."""
    function = functions_framework.create_app("preview_table", MAIN, "http").test_client()
    if isinstance(body, bytes):
        response = function.post("/", data=body, content_type="application/json" if body != b"x" else "text/plain")
    else:
        response = function.post("/", json=body)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["status"] == "error"
    if field:
        assert payload["details"][0]["field"] == field
    assert function.get("/").status_code == 405


def test_create_job_validate_and_run_job_functions(function_env, client, pg, stack):
    cid = pg
    dataset = f"f_{uuid.uuid4().hex[:8]}"
    create = functions_framework.create_app("create_job", MAIN, "http").test_client()
    response = create.post(
        "/",
        json={
            "name": "fn",
            "connection_id": cid,
            "schema_name": "public",
            "table_name": "composite_pk",
            "selected_columns": ["region", "order_no", "amount"],
            "load_type": "catalog",
            "destination": {"mode": "new", "dataset": dataset, "table": "orders"},
        },
    )
    assert response.status_code == 201, response.get_json()
    job_id = response.get_json()["job"]["id"]

    validate = functions_framework.create_app("validate_schema", MAIN, "http").test_client()
    report = validate.post(
        "/",
        json={
            "destination_table": f"{dataset}.orders",
            "source_columns": [{"name": "region", "bigquery_type": "INT64"}],
        },
    ).get_json()
    assert report["compatible"] is False
    assert (
        report["warnings"][0]
        == "Column region: source INT64 into STRING is a widening conversion: values are loaded as their text."
    )
    assert report["errors"] == [
        "Column order_no (INT64, REQUIRED) is not in the source, and the table requires a value in it."
    ]

    run = functions_framework.create_app("run_job", MAIN, "cloudevent").test_client()
    message = {
        "message": {
            "data": base64.b64encode(json.dumps({"job_id": job_id, "trigger": "schedule"}).encode()).decode(),
            "messageId": "1",
            "attributes": {"job_id": job_id},
        },
        "subscription": "projects/p/subscriptions/run-job",
    }
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub/test",
            "specversion": "1.0",
            "id": "1",
        },
        message,
    )
    headers, body = to_structured(event)
    assert run.post("/", headers=headers, data=body).status_code == 200
    runs = client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]
    assert [(r["status"], r["rows"], r["trigger"]) for r in runs] == [("succeeded", 2, "schedule")]

    unknown = CloudEvent(
        dict(event.get_attributes()), {"message": {"data": base64.b64encode(b'{"job_id": "nope"}').decode()}}
    )
    headers, body = to_structured(unknown)
    assert run.post("/", headers=headers, data=body).status_code == 200  # terminal: acknowledged, not retried


@pytest.fixture
def etl_api_server(function_env):
    """The etl_api function on a local server, as Cloud Functions would serve it; every request's
    Authorization header is recorded."""
    import threading

    from werkzeug.serving import make_server

    seen = []
    app = functions_framework.create_app("etl_api", MAIN, "http")

    def recording(environ, start_response):
        seen.append((environ["PATH_INFO"], environ.get("HTTP_AUTHORIZATION")))
        return app.wsgi_app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_the_wizard_calls_the_etl_api_function_over_http_with_id_tokens(etl_api_server, postgres_db, settings):
    from web.app import create_app
    from web.client import ApiProxy

    url, seen = etl_api_server
    proxy = ApiProxy(url, token_source=lambda audience: f"id-token-for {audience}")
    wizard = create_app(settings=settings, proxy=proxy).test_client()

    created = wizard.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db})
    assert created.status_code == 201
    cid = created.get_json()["connection"]["id"]
    preview = wizard.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": "public", "table_name": "composite_pk"}
    )
    assert preview.status_code == 200 and preview.get_json()["recommended_primary_key"] == ["region", "order_no"]
    dataset = f"h_{uuid.uuid4().hex[:8]}"
    job = wizard.post(
        "/api/etl/jobs/",
        json={
            "name": "over http",
            "connection_id": cid,
            "schema_name": "public",
            "table_name": "composite_pk",
            "selected_columns": ["region", "order_no"],
            "load_type": "catalog",
            "destination": {"mode": "new", "dataset": dataset, "table": "t"},
        },
    )
    assert job.status_code == 201
    report = wizard.post(
        "/api/etl/validate-schema-compatibility/",
        json={"destination_table": f"{dataset}.t", "source_columns": [{"name": "region", "bigquery_type": "STRING"}]},
    )
    assert report.get_json()["errors"] == [
        "Column order_no (INT64, REQUIRED) is not in the source, and the table requires a value in it."
    ]
    missing = wizard.get("/api/etl/jobs/nope/")
    assert (missing.status_code, missing.get_json()["message"]) == (404, "job nope does not exist")

    assert [path for path, _ in seen] == [
        "/api/connections/",
        f"/api/connections/{cid}/fetch-table-preview/",
        "/api/etl/jobs/",
        "/api/etl/validate-schema-compatibility/",
        "/api/etl/jobs/nope/",
    ]
    assert all(token == f"Bearer id-token-for {url}" for _, token in seen)


def test_the_wizard_refuses_a_body_the_api_would_before_passing_it_on(etl_api_server, settings):
    from web.app import create_app
    from web.client import ApiProxy

    url, seen = etl_api_server
    wizard = create_app(settings=settings, proxy=ApiProxy(url, token_source=lambda a: "t")).test_client()
    deep = wizard.post("/api/connections/", data="[" * 10_000 + "]" * 10_000, content_type="application/json")
    large = wizard.post("/api/connections/", data='{"a": "' + "x" * 2_000_000 + '"}', content_type="application/json")
    assert (deep.status_code, deep.get_json()["details"][0]["field"]) == (400, "body")
    assert (large.status_code, large.get_json()["status"]) == (413, "error")
    assert seen == []  # neither reached the function


def test_an_unreachable_function_is_a_readable_502(settings):
    from etlwizard.emulator import free_port
    from web.app import create_app
    from web.client import ApiProxy

    proxy = ApiProxy(f"http://127.0.0.1:{free_port()}", token_source=lambda a: "t", timeout=5)
    wizard = create_app(settings=settings, proxy=proxy).test_client()
    response = wizard.get("/api/etl/jobs/")
    assert response.status_code == 502
    assert response.get_json()["message"] == "The etl_api function could not be reached."
