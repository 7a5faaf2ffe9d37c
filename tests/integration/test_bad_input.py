"""Bad input, as a hostile client sends it (issue 13): every route of the API answers a 4xx with a
JSON error body naming what is wrong, never a 500, and a refused request changes nothing.

The fuzz walks the Flask app's own url_map, so a new route is fuzzed (and must be listed below as
taking a body or not) without anyone remembering to."""

import json
import time
import uuid
from urllib.parse import quote

import pg8000.native
import pytest

from etlwizard.api import MAX_BODY_BYTES, create_api_app
from tests.integration.loading import orders_job

MEGABYTE_TEXT = "x" * 1_000_000  # under the body limit: the field's own limit must refuse it

# Whole bodies no route takes: the shapes found breaking the demo, and the transport's own limits.
BAD_BODIES = {
    "nested 10,000 deep": ("application/json", '{"name": ' + "[" * 10_000 + "]" * 10_000 + "}"),
    "array 10,000 deep": ("application/json", "[" * 10_000 + "]" * 10_000),
    "objects 10,000 deep": ("application/json", '{"a": ' * 10_000 + "1" + "}" * 10_000),
    "nested 40 deep": ("application/json", '{"name": ' + "[" * 40 + "]" * 40 + "}"),
    "integer of 5,000 digits": ("application/json", "9" * 5000),
    "huge integer": ("application/json", str(10**100)),
    "list": ("application/json", '["name"]'),
    "string with NUL": ("application/json", '"a\\u0000b"'),
    "1 MB string": ("application/json", json.dumps(MEGABYTE_TEXT)),
    "null": ("application/json", "null"),
    "not JSON": ("application/json", "{name: 1"),
    "not UTF-8": ("application/json", b'{"name": "\xff\xfe"}'),
    "2 MB body": ("application/json", json.dumps({"name": "x" * 2_000_000})),
    "JSON as text/plain": ("text/plain", '{"name": "x"}'),
    "a form": ("application/x-www-form-urlencoded", "name=x&type=postgresql"),
    "multipart": (
        "multipart/form-data; boundary=b",
        '--b\r\nContent-Disposition: form-data; name="n"\r\n\r\nx\r\n--b--',
    ),
}

# Values no field takes, put in place of each field of a valid body in turn.
BAD_VALUES = [10**100, -(10**100), 1.5e308, [[]], {"$gt": ""}, "a\x00b", "a\x1bb", "a\nb", MEGABYTE_TEXT]
# ...and in place of identifiers (names of schemas, tables, columns), SQL meant for the canary table.
INJECTIONS = ['{canary}"; DROP TABLE {canary}; --', "{canary}`; DROP TABLE {canary}; #", "{canary}' OR '1'='1"]

BODILESS = {
    "api.sweep_job",
    "api.list_connections",
    "api.test_connection",
    "api.delete_connection",
    "api.list_tables",
    "api.list_destination_tables",
    "api.describe_destination_table",
    "api.list_jobs",
    "api.read_job",
    "api.list_runs",
    "api.run_job",
    "api.pause_job",
    "api.resume_job",
}
IDENTIFIERS = {"schema_name", "table_name", "selected_columns", "timestamp_column", "primary_key", "dataset", "table"}


@pytest.fixture
def canary(postgres_db):
    """A PostgreSQL table every injection tries to drop; it must outlive the test."""
    name = f"canary_{uuid.uuid4().hex[:8]}"
    db = pg8000.native.Connection(**postgres_db)
    db.run(f"CREATE TABLE {name} (id int)")
    yield name
    assert db.run("SELECT to_regclass(:n) IS NOT NULL", n=name) == [[True]], "the canary table was dropped"
    db.run(f"DROP TABLE {name}")
    db.close()


@pytest.fixture
def world(client, stack, pg, postgres_db, dataset):
    """A real connection and job, and a valid body for each route that takes one."""
    schedule = {"type": "daily", "time": "02:30", "timezone": "Europe/Berlin"}
    job_body = orders_job(
        pg,
        dataset,
        primary_key=["region", "order_no"],
        historical_backfill="custom",
        historical_start_date="2024-01-01",
        destination={"mode": "new", "dataset": dataset, "table": "orders", "add_missing_columns": False},
        schedule=schedule,
        checks={"verify": True, "repair": False, "deleted_rows": "keep", "sweep_every_run": False},
        alerts={"webhook_url": "https://hooks.example.com/services/T/B/x", "topic": "etl-alerts"},
    )
    created = client.post("/api/etl/jobs/", json=job_body)
    assert created.status_code == 201, created.get_json()
    job = created.get_json()["job"]["id"]
    bodies = {
        "api.create_connection": {
            "name": "another",
            "type": "postgresql",
            "password": "",
            "tls_mode": "disable",
            "via": "direct",
            **{k: v for k, v in postgres_db.items()},
        },
        "api.trust_host_key": {"fingerprint": "SHA256:" + "A" * 43},  # pg goes through no bastion: 400
        "api.fetch_table_preview": {"schema_name": "public", "table_name": "composite_pk"},
        "api.validate_schema": {
            "source_columns": [{"name": "region", "bigquery_type": "STRING", "mode": "REQUIRED", "nullable": False}],
            "destination_table": f"{dataset}.orders",
            "primary_key": ["region"],
            "timestamp_column": "modified_at",
        },
        "api.preview_schedule": {**schedule, "day_of_week": "mon", "day_of_month": 1, "cron": "0 1 * * *"},
        "api.create_job": {**job_body, "destination": {**job_body["destination"], "table": "orders_2"}},
        "api.update_job": {"name": "Orders", "schedule": schedule, "selected_columns": job_body["selected_columns"]},
        "api.delete_job": {"drop_table": False},
        "api.reconnect_job": {"connection_id": pg, "schema_name": "public", "table_name": "composite_pk"},
        "api.verify_job": {"repair": False},
    }
    paths = {"job_id": job, "connection_id": pg, "dataset": dataset, "table": "orders"}
    return {"job": job, "connection": pg, "bodies": bodies, "paths": paths}


def hostile_path_values(canary):
    return [
        "0123456789ab",  # an id's format, naming nothing
        "x",
        "ABCDEF012345",
        "0123456789abc",
        "\x00",
        "a\nb",
        "..",
        "__x__",
        "9" * 400,
        "a" * 5000,
        "🙂",
        f"{canary}'; DROP TABLE {canary}; --",
        f"{canary}`.x",
    ]


def state(stack):
    """What a refused request must leave as it was."""
    return {
        "jobs": sorted(json.dumps(j, sort_keys=True) for j in stack.store.list("jobs")),
        "connections": sorted(json.dumps(c, sort_keys=True) for c in stack.store.list("connections")),
    }


def assert_refused(response, what):
    assert 400 <= response.status_code < 500, (what, response.status_code, response.get_data()[:300])
    payload = response.get_json(silent=True)
    assert isinstance(payload, dict), (what, response.get_data()[:300])
    assert payload["status"] == "error" and isinstance(payload["message"], str), (what, payload)
    assert isinstance(payload["details"], list), (what, payload)
    return payload


def api_rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]
    assert rules
    return [(rule, method) for rule in rules for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def fill(rule, values):
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", quote(values[name], safe=""))
    return path


def send(client, method, path, body):
    content_type, data = body
    return client.open(path, method=method, data=data, headers={"Content-Type": content_type})


@pytest.fixture(params=["wizard", "etl_api"])
def fuzz_client(request, client, stack):
    """The wizard's app (with its cross-site checks) and the etl_api function's (the API alone)."""
    if request.param == "wizard":
        return client
    app = create_api_app(stack)
    app.testing = True
    return app.test_client()


def test_every_route_refuses_bad_bodies_and_paths(fuzz_client, stack, world, canary):
    app = fuzz_client.application
    taken = set(world["bodies"])
    for rule, _method in api_rules(app):
        assert rule.endpoint in taken | BODILESS, f"{rule.rule}: say in this test whether it takes a body"
    before = state(stack)
    hostile = hostile_path_values(canary)
    started, sent = time.monotonic(), 0
    for rule, method in api_rules(app):
        fills = [world["paths"]] + [{name: value for name in rule.arguments} for value in hostile]
        for values in fills if rule.arguments else [{}]:
            path = fill(rule, values)
            for label, body in BAD_BODIES.items():
                assert_refused(send(fuzz_client, method, path, body), f"{method} {path[:80]} {label}")
                sent += 1
            if rule.arguments and values is not world["paths"]:
                response = fuzz_client.open(path, method=method, json={} if method != "GET" else None)
                assert_refused(response, f"{method} {path[:80]} (hostile path)")
                sent += 1
    for rows in ("-1", "1001", "1e3", "9" * 400, "\x00", "[]"):
        response = fuzz_client.get(f"/api/etl/datasets/{world['paths']['dataset']}/tables/orders/?rows={quote(rows)}")
        assert assert_refused(response, f"rows={rows[:10]}")["details"][0]["field"] == "rows"
    assert state(stack) == before
    assert sent > 500
    print(f"{sent} requests in {time.monotonic() - started:.1f} s")


def leaves(body, prefix=""):
    """(path, value) of each field of a body, an object's fields one level down (destination.table)."""
    for name, value in body.items():
        if isinstance(value, dict) and name != "source_columns":
            yield from leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def replaced(body, path, value):
    head, _, rest = path.partition(".")
    copy = dict(body)
    copy[head] = replaced(body[head], rest, value) if rest else value
    return copy


def bad_values(field, valid, canary):
    values = list(BAD_VALUES) + ([] if isinstance(valid, bool) else [False])  # false is no "left out"
    if field.rsplit(".", 1)[-1] in IDENTIFIERS:
        values += [v.format(canary=canary) for v in INJECTIONS]
        if isinstance(valid, list):
            values += [[v] for v in values if isinstance(v, str)] + [["region", "Region"], [""], []]
    if field == "password":
        values.remove("a\x1bb")  # a password may hold any character but NUL (and ESC is one)
        values.remove("a\nb")
    if field == "primary_key":
        values = [v for v in values if v != []]  # no key is a valid choice
    if field.startswith("source_columns"):
        values += [[{"name": "region", "bigquery_type": "STRING", "mode": v}] for v in (1, "SOMETIMES", ["NULLABLE"])]
        values += [[{"name": "region", "bigquery_type": v}] for v in (1, ["STRING"], "")]
        values += [[{"name": "region", "bigquery_type": "STRING", "nullable": "false"}]]
    return values


def test_every_field_of_every_body_is_typed(client, stack, world, canary):
    before = state(stack)
    for endpoint, body in world["bodies"].items():
        rule = next(r for r in client.application.url_map.iter_rules() if r.endpoint == endpoint)
        method = next(iter(rule.methods - {"HEAD", "OPTIONS"}))
        path = fill(rule, world["paths"])
        for field, valid in leaves(body):
            for value in bad_values(field, valid, canary):
                started = time.monotonic()
                response = client.open(path, method=method, json=replaced(body, field, value))
                what = f"{method} {path} {field}={str(value)[:60]!r}"
                payload = assert_refused(response, what)
                assert time.monotonic() - started < 5, what  # never a retry loop
                named = [d.get("field", "") for d in payload["details"] if isinstance(d, dict)]
                if response.status_code == 400:  # names the field (preview_schedule's body is a schedule.)
                    top, leaf = field.split(".")[0], field.split(".")[-1]
                    assert any(n.split(".")[0] == top or n.split(".")[-1] == leaf for n in named), (what, payload)
    assert state(stack) == before
    made = client.get(f"/api/etl/datasets/{world['paths']['dataset']}/tables/").get_json()["tables"]
    assert [t["table_name"] for t in made] == ["orders"]  # the world's job's table, and nothing new


@pytest.fixture
def odd_table(postgres_db, canary):
    """A real table whose column names PostgreSQL takes and BigQuery does not."""
    name = f"odd_{uuid.uuid4().hex[:8]}"
    db = pg8000.native.Connection(**postgres_db)
    db.run(
        f'CREATE TABLE {name} (id int PRIMARY KEY, "a""b; DROP TABLE {canary}; --" text, "Order Date" date, '
        "at timestamptz NOT NULL DEFAULT now())"
    )
    yield name
    db.run(f"DROP TABLE {name}")
    db.close()


def test_a_column_bigquery_cannot_take_is_refused_at_once(client, stack, pg, dataset, canary, odd_table):
    odd = f'a"b; DROP TABLE {canary}; --'
    preview = client.post(
        f"/api/connections/{pg}/fetch-table-preview/", json={"schema_name": "public", "table_name": odd_table}
    ).get_json()
    shown = {c["name"]: c.get("warning") for c in preview["columns"]}
    assert shown["Order Date"] is None  # BigQuery's flexible column names take spaces
    assert shown[odd].startswith("cannot be loaded under this name: BigQuery column names cannot hold '\"', ';'")
    assert any(w.startswith(f"{odd}: cannot be loaded under this name") for w in preview["warnings"])

    before = state(stack)
    body = {
        "name": "odd",
        "connection_id": pg,
        "schema_name": "public",
        "table_name": odd_table,
        "selected_columns": ["id", odd, "Order Date", "at"],
        "load_type": "transactional",
        "timestamp_column": "at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": "odd"},
    }
    started = time.monotonic()
    response = client.post("/api/etl/jobs/", json=body)
    assert time.monotonic() - started < 1
    payload = assert_refused(response, "create")
    assert response.status_code == 400
    assert payload["details"][0]["field"] == "selected_columns"
    assert payload["message"].startswith(f"selected_columns: column {odd!r} cannot be loaded under that name:")
    assert client.get(f"/api/etl/datasets/{dataset}/tables/odd/").status_code == 404  # nothing made in BigQuery
    assert state(stack) == before

    # without that column the job is made, "Order Date" and all; adding it later is refused the same way
    body["selected_columns"] = ["id", "Order Date", "at"]
    created = client.post("/api/etl/jobs/", json=body)
    assert created.status_code == 201, created.get_json()
    job = created.get_json()["job"]["id"]
    edit = client.patch(f"/api/etl/jobs/{job}/", json={"selected_columns": ["id", odd, "Order Date", "at"]})
    assert assert_refused(edit, "patch")["details"][0]["field"] == "selected_columns"


def test_the_cases_the_tester_found(client, stack, world, dataset):
    job, pg = world["job"], world["connection"]
    cases = [
        ("delete", f"/api/etl/jobs/{job}/", {"drop_table": "true"}, "drop_table"),
        ("post", f"/api/etl/jobs/{job}/reconnect/", {"connection_id": 10**30}, "connection_id"),
        ("post", f"/api/etl/jobs/{job}/reconnect/", {"connection_id": [pg]}, "connection_id"),
        ("post", f"/api/etl/jobs/{job}/reconnect/", {"connection_id": {"id": pg}}, "connection_id"),
        ("post", f"/api/etl/jobs/{job}/reconnect/", {"connection_id": "nope"}, "connection_id"),
        ("post", f"/api/etl/jobs/{job}/reconnect/", {"table_name": "composite_pk\x00"}, "table_name"),
        (
            "post",
            "/api/etl/validate-schema-compatibility/",
            {
                "source_columns": [{"name": "region", "bigquery_type": "STRING"}],
                "destination_table": f"{dataset}.orders",
                "timestamp_column": 5,
            },
            "timestamp_column",
        ),
        (
            "post",
            "/api/connections/",
            {"name": "big", "type": "postgresql", "host": "h", "database": "d", "user": "u", "password": "p" * 4097},
            "password",
        ),
        ("post", "/api/etl/schedules/preview/", {"type": "cron", "cron": "0 1 * * * " + " " * 500}, "schedule.cron"),
    ]
    before = state(stack)
    for method, path, body, field in cases:
        payload = assert_refused(getattr(client, method)(path, json=body), f"{method} {path} {body}"[:200])
        assert payload["details"][0]["field"] == field, payload
    assert state(stack) == before
    too_big = client.post(
        "/api/connections/", data=b"{" + b" " * MAX_BODY_BYTES + b"}", content_type="application/json"
    )
    assert too_big.status_code == 413
    assert too_big.get_json()["message"] == "The request body is larger than the limit of 1048576 bytes (1 MiB)."
    assert (
        client.post(
            "/api/connections/",
            json={"name": "ok", "type": "bigquery", "project": "my-project-1", "password": "p" * 4096},
        ).status_code
        == 201
    )
