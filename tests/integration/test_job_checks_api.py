"""A job's checks and alert channels through the API (issue 15): `checks` and `alerts` on create and
edit, each bad value a 400 naming its field; verification on demand (POST /verify/) over a real
PostgreSQL job finds a row deleted from BigQuery behind the product's back, records a run of its
own with the mismatch, alerts the job's own webhook and turns the job's health to "mismatch"; with
repair it matches again and the job is ok; the deleted-row sweep on demand (POST /sweep/) marks a
row deleted at the source."""

import json
import uuid

import pytest

from etlwizard.alerts import webhook_secret_name
from etlwizard.errors import EtlError, NotFound
from etlwizard.job import COLLECTION
from etlwizard.run.deletes import NO_KEY
from etlwizard.run.records import save_run
from etlwizard.run.state import Run
from tests.integration.loading import make_job, run
from tests.integration.test_alerts import TOKEN

DEFAULT_CHECKS = {"verify": True, "repair": False, "deleted_rows": "keep", "sweep_every_run": False}


@pytest.fixture
def stack(make_stack, tls_certificates):
    """The test's stack, trusting the tests' CA for a job's own webhook (a local HTTPS receiver)."""
    return make_stack(alert_ca_file=tls_certificates.ca.cert_path, alert_timeout=1)


def body(pg, table, dataset, **overrides):
    base = {
        "name": "events",
        "connection_id": pg,
        "schema_name": "public",
        "table_name": table,
        "selected_columns": ["id", "note", "amount", "updated_at"],
        "load_type": "transactional",
        "timestamp_column": "updated_at",
        "historical_backfill": "all",
        "destination": {"mode": "new", "dataset": dataset, "table": "events"},
        "schedule": {"type": "manual"},
    }
    return {**base, **overrides}


def job_of(client, job_id):
    response = client.get(f"/api/etl/jobs/{job_id}/")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["job"]


def history(client, job_id):
    return client.get(f"/api/etl/jobs/{job_id}/runs/").get_json()["runs"]


@pytest.fixture
def columns_added(stack, monkeypatch):
    """The tables given _etl_deleted_at, as (dataset, table). Counted as the calls are made: the
    emulator neither shows a column added by DDL in the table's metadata nor refuses a query of a
    column that is not there, so no query can tell."""
    added = []
    add = stack.warehouse.add_deleted_at

    def spy(dataset, table):
        added.append((dataset, table))
        add(dataset, table)

    monkeypatch.setattr(stack.warehouse, "add_deleted_at", spy)
    return added


def refused(response, field, words=""):
    payload = response.get_json()
    assert response.status_code == 400, payload
    assert payload["details"][0]["field"] == field, payload
    assert words in payload["message"], payload
    return payload


def store_text(settings):
    return (settings.data_dir / "jobs.sqlite3").read_bytes().decode("utf-8", "replace")


# --- create and edit ------------------------------------------------------------------------------


def test_a_job_is_created_with_its_checks_and_alert_channels(
    client, stack, pg, table, dataset, receiver, settings, columns_added
):
    url = receiver.url()
    checks = {"verify": True, "repair": True, "deleted_rows": "mark", "sweep_every_run": True}
    job = make_job(client, pg, table, dataset, primary_key=["id"], checks=checks, alerts={"webhook_url": url})
    assert job["checks"] == checks
    assert job["alerts"] == {"webhook_host": "127.0.0.1", "topic": None}  # the URL holds a token: never shown
    assert TOKEN not in json.dumps(job_of(client, job["id"])) and TOKEN not in store_text(settings)
    assert stack.secrets.get(webhook_secret_name(job["id"])) == url
    assert columns_added == [(dataset, "events")]  # marking: the column is there before the first run

    plain = make_job(client, pg, table, dataset, name="plain", destination={"mode": "new", "dataset": dataset})
    assert plain["checks"] == DEFAULT_CHECKS
    assert plain["alerts"] == {"webhook_host": None, "topic": None}

    assert client.delete(f"/api/etl/jobs/{job['id']}/").status_code == 200
    with pytest.raises(NotFound):  # the URL left with its job
        stack.secrets.get(webhook_secret_name(job["id"]))


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"checks": "yes"}, "checks", "must be a JSON object"),
        ({"checks": {"verify": "yes"}}, "checks.verify", "must be true or false"),
        ({"checks": {"repair": 1}}, "checks.repair", "must be true or false"),
        ({"checks": {"sweep_every_run": None}}, "checks.sweep_every_run", "must be true or false"),
        ({"checks": {"deleted_rows": "delete"}}, "checks.deleted_rows", "must be keep, mark or remove"),
        ({"checks": {"deleted_rows": None}}, "checks.deleted_rows", "must be keep, mark or remove"),
        ({"checks": {"colour": "red"}}, "checks.colour", "not a field of checks"),
        (
            {"checks": {"deleted_rows": "mark"}, "load_type": "catalog", "timestamp_column": None},
            "checks.deleted_rows",
            "a catalog load already drops deleted rows",
        ),
        ({"checks": {"deleted_rows": "remove"}, "primary_key": []}, "checks.deleted_rows", NO_KEY),
        ({"alerts": "https://hooks.example.com/x"}, "alerts", "an object"),
        ({"alerts": {"webhook_url": "http://hooks.example.com/x"}}, "alerts.webhook_url", "https://"),
        ({"alerts": {"topic": "goog-x"}}, "alerts.topic", "a Pub/Sub topic name"),
        ({"alerts": {"slack": "x"}}, "alerts.slack", "not a field of alerts"),
    ],
)
def test_bad_checks_and_alerts_are_400_naming_the_field_and_create_nothing(
    client, stack, pg, table, dataset, overrides, field, words
):
    refused(client.post("/api/etl/jobs/", json=body(pg, table, dataset, **overrides)), field, words)
    assert stack.store.list(COLLECTION) == []
    assert client.get(f"/api/etl/datasets/{dataset}/tables/events/").status_code == 404  # no table made


def test_checks_and_alerts_are_edited_and_a_refused_edit_changes_nothing(
    client, stack, pg, table, dataset, receiver, settings, columns_added
):
    job = make_job(client, pg, table, dataset, primary_key=["id"])
    patch = lambda changes: client.patch(f"/api/etl/jobs/{job['id']}/", json=changes)  # noqa: E731

    edited = patch({"checks": {"repair": True}})
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["job"]["checks"] == {**DEFAULT_CHECKS, "repair": True}  # the rest kept

    assert columns_added == []
    edited = patch({"checks": {"deleted_rows": "mark", "sweep_every_run": True}, "name": "events, marked"})
    shown = edited.get_json()["job"]
    assert shown["checks"] == {"verify": True, "repair": True, "deleted_rows": "mark", "sweep_every_run": True}
    assert shown["name"] == "events, marked"
    assert columns_added == [(dataset, "events")]

    before = stack.store.get(COLLECTION, job["id"])
    refused(patch({"name": "renamed", "checks": {"deleted_rows": "hide"}}), "checks.deleted_rows")
    refused(patch({"name": "renamed", "alerts": {"webhook_url": "ftp://x"}}), "alerts.webhook_url")
    refused(patch({"checks": {"verify": "off"}}), "checks.verify")
    assert stack.store.get(COLLECTION, job["id"]) == before

    edited = patch({"alerts": {"webhook_url": receiver.url(), "topic": "etl-alerts"}})
    assert edited.get_json()["job"]["alerts"] == {"webhook_host": "127.0.0.1", "topic": "etl-alerts"}
    assert TOKEN not in edited.get_data(as_text=True) and TOKEN not in store_text(settings)
    edited = patch({"alerts": {"webhook_url": ""}})  # "" removes one; a key left out keeps the other
    assert edited.get_json()["job"]["alerts"] == {"webhook_host": None, "topic": "etl-alerts"}
    assert job_of(client, job["id"])["checks"]["deleted_rows"] == "mark"


def test_a_catalog_job_or_one_without_a_key_cannot_mark_deleted_rows_by_edit(client, pg, table, dataset):
    catalog = make_job(
        client,
        pg,
        table,
        dataset,
        load_type="catalog",
        timestamp_column=None,
        primary_key=["id"],
        destination={"mode": "new", "dataset": dataset, "table": "catalog"},
    )
    response = client.patch(f"/api/etl/jobs/{catalog['id']}/", json={"checks": {"deleted_rows": "remove"}})
    refused(response, "checks.deleted_rows", "a catalog load already drops deleted rows")
    keyless = make_job(
        client, pg, table, dataset, name="no key", primary_key=[], destination={"mode": "new", "dataset": dataset}
    )
    response = client.patch(f"/api/etl/jobs/{keyless['id']}/", json={"checks": {"deleted_rows": "mark"}})
    payload = refused(response, "checks.deleted_rows", "catalog")
    assert payload["message"] == f"checks.deleted_rows: {NO_KEY}"


# --- verification on demand -----------------------------------------------------------------------


def test_verify_finds_a_row_deleted_from_bigquery_alerts_and_repair_puts_it_right(
    client, stack, pg, events, dataset, receiver
):
    job = make_job(client, pg, events, dataset, primary_key=["id"], alerts={"webhook_url": receiver.url()})
    run(stack, job["id"])
    [loaded] = history(client, job["id"])
    assert loaded["status"] == "succeeded" and loaded["verification"]["status"] == "matched"
    stack.warehouse.query(f"DELETE FROM {stack.warehouse.quoted(dataset, 'events')} WHERE id = 5")

    response = client.post(f"/api/etl/jobs/{job['id']}/verify/")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    found = answer["verification"]
    assert found["status"] == "mismatched" and found["rows"] == 300 and found["buckets"] == 10
    assert [(m["bucket"], m["source_rows"], m["destination_rows"]) for m in found["mismatched"]] == [
        ("2024-05-01", 30, 29)
    ]
    assert "repaired" not in found  # the job does not repair, and the request did not ask

    newest, load = history(client, job["id"])
    assert newest["id"] == answer["run_id"] == answer["run"]["id"]
    assert (newest["trigger"], newest["status"], newest["rows"]) == ("verify", "succeeded", 0)
    assert newest["verification"] == found
    assert [a["kind"] for a in newest["alerts"]] == ["mismatch"]  # told, and recorded on the verify run
    assert [d["ok"] for d in newest["alerts"][0]["deliveries"]] == [True]
    [sent] = receiver.bodies()
    assert (sent["kind"], sent["run_id"], sent["details"]["status"]) == ("mismatch", newest["id"], "mismatched")
    assert load["id"] == loaded["id"]

    shown = job_of(client, job["id"])
    assert shown["health"]["status"] == "mismatch"
    assert "1 of 10 buckets differ" in shown["health"]["reason"]
    assert shown["last_run"]["id"] == loaded["id"]  # the job's last load, not the check

    listed = client.get("/api/etl/jobs/?health=mismatch").get_json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]

    repaired = client.post(f"/api/etl/jobs/{job['id']}/verify/", json={"repair": True}).get_json()
    assert repaired["verification"]["status"] == "mismatched"
    assert repaired["verification"]["repaired"]["status"] == "matched"
    assert repaired["run"]["verification"]["repaired"]["status"] == "matched"
    assert job_of(client, job["id"])["health"]["status"] == "ok"
    ids = {r[0] for r in stack.warehouse.query(f"SELECT id FROM {stack.warehouse.quoted(dataset, 'events')}")}
    assert ids == set(range(1, 301))

    again = client.post(f"/api/etl/jobs/{job['id']}/verify/", json={}).get_json()
    assert again["verification"]["status"] == "matched"
    assert [r["trigger"] for r in history(client, job["id"])] == ["verify", "verify", "verify", "manual"]
    assert len(receiver.received) == 2  # each verification's mismatch is its own event


def test_verify_repairs_when_the_job_says_so_and_not_while_a_run_holds_the_job(client, stack, pg, events, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"], checks={"repair": True})
    run(stack, job["id"])
    table = stack.warehouse.quoted(dataset, "events")
    stack.warehouse.query(f"DELETE FROM {table} WHERE id IN (40, 41)")

    holder = Run.new(job["id"], "schedule", stack.clock())
    save_run(stack, holder)
    expires = stack.clock().replace(year=stack.clock().year + 1).isoformat()
    stack.store.transact(COLLECTION, job["id"], lambda j: {**j, "lease": {"run_id": holder.id, "expires_at": expires}})
    held = client.post(f"/api/etl/jobs/{job['id']}/verify/").get_json()  # verifying only reads: it runs
    assert held["verification"]["status"] == "mismatched"
    assert held["verification"]["repaired"]["status"] == "mismatched"
    assert held["verification"]["repaired"]["message"].startswith("not repaired: a run of the job is in progress")
    assert held["run"]["status"] == "succeeded"

    stack.store.transact(COLLECTION, job["id"], lambda j: {k: v for k, v in j.items() if k != "lease"})
    # the job repairs; the request may say otherwise
    kept = client.post(f"/api/etl/jobs/{job['id']}/verify/", json={"repair": False}).get_json()
    assert kept["verification"]["status"] == "mismatched" and "repaired" not in kept["verification"]
    fixed = client.post(f"/api/etl/jobs/{job['id']}/verify/").get_json()
    assert fixed["verification"]["repaired"]["status"] == "matched"


def test_verify_and_sweep_refuse_bad_requests(client, stack, pg, events, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    verify = f"/api/etl/jobs/{job['id']}/verify/"
    refused(client.post(verify, json={"repair": "yes"}), "repair", "must be true or false")
    refused(client.post(verify, json={"repaired": True}), "repaired", "takes only repair")
    refused(client.post(f"/api/etl/jobs/{job['id']}/sweep/", json={"mode": "mark"}), "mode", "takes no fields")
    assert client.post("/api/etl/jobs/0123456789ab/verify/").status_code == 404
    assert client.post("/api/etl/jobs/0123456789ab/sweep/").status_code == 404
    kept = client.post(f"/api/etl/jobs/{job['id']}/sweep/")  # the job keeps deleted rows: nothing to sweep for
    assert kept.status_code == 409 and "checks.deleted_rows" in kept.get_json()["message"]
    assert history(client, job["id"]) == []  # refused: no run recorded

    # before any run: nothing committed to verify, said and recorded
    nothing = client.post(verify).get_json()
    assert (nothing["verification"]["status"], nothing["verification"]["scope"]) == ("skipped", "nothing committed yet")


def test_a_verification_that_cannot_reach_the_source_is_a_failed_check_not_a_failing_job(
    client, stack, pg, pg_sql, events, dataset
):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    run(stack, job["id"])
    moved = f"{events}_{uuid.uuid4().hex[:4]}"
    pg_sql(f"ALTER TABLE {events} RENAME TO {moved}")
    try:
        answer = client.post(f"/api/etl/jobs/{job['id']}/verify/").get_json()
        assert answer["verification"]["status"] == "failed"
        assert answer["run"]["status"] == "failed"
        assert answer["run"]["error"].startswith("Could not verify: ")
    finally:
        pg_sql(f"ALTER TABLE {moved} RENAME TO {events}")
    shown = job_of(client, job["id"])
    assert shown["health"]["status"] == "ok"  # the loads work: a check that could not run says so itself
    assert shown["last_run"]["trigger"] == "manual"


def test_a_verify_run_does_not_end_a_failing_streak(client, stack, pg, pg_sql, events, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"])
    moved = f"{events}_{uuid.uuid4().hex[:4]}"
    pg_sql(f"ALTER TABLE {events} RENAME TO {moved}")
    try:
        with pytest.raises(EtlError):  # recorded failed
            run(stack, job["id"])
    finally:
        pg_sql(f"ALTER TABLE {moved} RENAME TO {events}")
    assert client.post(f"/api/etl/jobs/{job['id']}/verify/").get_json()["run"]["status"] == "succeeded"  # skipped
    shown = job_of(client, job["id"])
    assert shown["health"]["status"] == "failing"
    assert (shown["last_run"]["trigger"], shown["last_run"]["status"]) == ("manual", "failed")


# --- deleted rows on demand -----------------------------------------------------------------------


def test_sweep_marks_a_row_deleted_at_the_source(client, stack, pg, pg_sql, events, dataset):
    job = make_job(client, pg, events, dataset, primary_key=["id"], checks={"deleted_rows": "mark"})
    run(stack, job["id"])
    [loaded] = history(client, job["id"])
    assert loaded["deleted_rows"]["status"] == "done"  # the first run's daily sweep
    pg_sql(f"DELETE FROM {events} WHERE id IN (3, 250)")

    response = client.post(f"/api/etl/jobs/{job['id']}/sweep/")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    swept = answer["deleted_rows"]
    assert (swept["status"], swept["mode"], swept["deleted"]) == ("done", "mark", 2)
    newest = history(client, job["id"])[0]
    assert newest["id"] == answer["run_id"]
    assert (newest["trigger"], newest["status"], newest["deleted_rows"]) == ("sweep", "succeeded", swept)
    table = stack.warehouse.quoted(dataset, "events")
    marked = stack.warehouse.query(f"SELECT id FROM {table} WHERE _etl_deleted_at IS NOT NULL ORDER BY id")
    assert [r[0] for r in marked] == [3, 250]
    stored = stack.store.get(COLLECTION, job["id"])
    assert stored["last_swept_at"] == swept["checked_at"]  # the day's sweep: the next run need not sweep
    assert job_of(client, job["id"])["last_run"]["id"] == loaded["id"]

    again = client.post(f"/api/etl/jobs/{job['id']}/sweep/").get_json()["deleted_rows"]
    assert (again["status"], again["deleted"]) == ("done", 0)  # marked once
