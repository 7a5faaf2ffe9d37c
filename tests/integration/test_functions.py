"""The Cloud Functions entry points, run by functions-framework exactly as deployed."""

from pathlib import Path

import functions_framework
import pytest

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
