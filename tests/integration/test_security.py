"""The HTTP surface against a hostile browser: cross-site writes, framing, leaks."""

import pytest

from etlwizard import connections


def count(stack):
    return len(stack.store.list("connections"))


@pytest.mark.parametrize(
    "headers, data",
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, "name=x&type=postgresql"),
        (
            {"Content-Type": "multipart/form-data; boundary=b"},
            '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--',
        ),
        ({"Content-Type": "text/plain"}, '{"name": "x", "type": "bigquery", "project": "my-project-1"}'),
    ],
)
def test_a_cross_site_form_cannot_change_anything(client, stack, headers, data):
    response = client.post("/api/connections/", data=data, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["message"] == "Send the request body as JSON (Content-Type: application/json)."
    assert count(stack) == 0


def test_a_foreign_origin_is_refused_on_every_write(client, stack):
    body = {"name": "x", "type": "bigquery", "project": "my-project-1"}
    evil = {"Origin": "https://evil.example"}
    assert client.post("/api/connections/", json=body, headers=evil).status_code == 403
    assert count(stack) == 0
    saved = client.post("/api/connections/", json=body, headers={"Origin": "http://localhost"})
    assert saved.status_code == 201  # the wizard's own pages
    cid = saved.get_json()["connection"]["id"]
    for method, path in [
        ("delete", f"/api/connections/{cid}/"),
        ("post", f"/api/connections/{cid}/test/"),
        ("post", "/api/etl/jobs/"),
        ("patch", "/api/etl/jobs/x/"),
        ("post", "/api/etl/jobs/x/run/"),
        ("post", "/api/etl/jobs/x/pause/"),
        ("delete", "/api/etl/jobs/x/"),
    ]:
        response = getattr(client, method)(path, json={}, headers=evil)
        assert response.status_code == 403, path
        assert (
            response.get_json()["message"]
            == "Cross-site request refused: origin https://evil.example is not this site."
        )
    assert count(stack) == 1
    # a client without a browser (curl) sends JSON and no Origin
    assert client.post("/api/connections/", json={**body, "name": "y"}).status_code == 201


def test_pages_carry_security_headers(client):
    for path in ("/", "/jobs", "/connections", "/api/connections/"):
        response = client.get(path)
        assert response.status_code == 200
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_an_unexpected_error_leaks_no_trace_or_path(client, stack, monkeypatch):
    def explode(*args):
        raise RuntimeError("/home/secret/path/config.py: password=hunter2")

    monkeypatch.setattr(connections, "list_connections", explode)
    response = client.get("/api/connections/")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert response.get_json()["message"] == "Internal error: the server log has the details."
    for leak in ("Traceback", "/home/secret", "hunter2", ".py"):
        assert leak not in text


@pytest.mark.parametrize("name", ["t'; DROP TABLE x; --", 't"; DELETE FROM y; /*', "t` OR 1=1 #", "t\\'--"])
def test_identifiers_with_quotes_and_comments_execute_nothing(client, settings, name):
    for body, expected in [
        ({"source_columns": [{"name": "a", "bigquery_type": "STRING"}], "destination_table": f"ds.{name}"}, 400),
        ({"source_columns": [{"name": "a", "bigquery_type": "STRING"}], "destination_table": f"{name}.t"}, 400),
    ]:
        response = client.post("/api/etl/validate-schema-compatibility/", json=body)
        assert response.status_code == expected
        assert response.get_json()["details"][0]["field"] == "destination_table"
    assert client.get(f"/api/etl/datasets/{name}/tables/").status_code in (400, 404)
