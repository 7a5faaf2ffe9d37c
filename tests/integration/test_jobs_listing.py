"""The jobs list for hundreds of jobs (GET /api/etl/jobs/): pages, search, filters, sort, each job's
health, and what a bad query gets. 300 jobs are created through the API once for the module; the
health of failing, paused, stuck and mismatched jobs is made by real runs on a stack of the test's own."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest

from etlwizard.config import Settings
from etlwizard.errors import EtlError
from etlwizard.job import runs_collection
from etlwizard.run.engine import handle_message
from etlwizard.run.records import save_run
from etlwizard.run.state import Run, RunStatus
from etlwizard.stack import Stack
from tests.conftest import PROJECT
from tests.integration.loading import ago, make_job, orders_job, run
from web.app import create_app

JOBS = 300
WORDS = ("orders", "refunds", "invoices")


@dataclass
class Listing:
    client: object
    stack: Stack
    jobs: list[dict]  # job i at index i (made concurrently: not necessarily in creation order)
    datasets: tuple[str, str]
    seconds_to_create: float


def job_number(i, datasets, connections):
    """Job i: two connections take turns, the first half loads into one dataset, the rest another;
    every 50th reads another table."""
    body = orders_job(
        connections[i % 2],
        datasets[i // 150],
        name=f"Load {i:03} {WORDS[i % 3]}",
        destination={"mode": "new", "dataset": datasets[i // 150], "table": f"orders_{i:03}"},
        schedule={"type": "hourly", "time": str(i % 60)},
    )
    if i % 50 == 7:
        body.update(table_name="empty_table", selected_columns=["id", "note"], load_type="catalog")
        body.pop("timestamp_column")
    return body


@pytest.fixture(scope="module")
def listing(tmp_path_factory, bigquery_url, postgres_db):
    """300 jobs made through the API, 8 requests at a time as a script would; every 30th paused; each
    with a history of 10 runs written by the run engine's own record keeper."""
    settings = Settings(
        project=PROJECT,
        bigquery_endpoint=bigquery_url,
        data_dir=tmp_path_factory.mktemp("listing") / "data",
        connect_timeout=3,
        query_timeout=30,
        run_lag_seconds=1,
    )
    stack = Stack(settings, run_handler=handle_message)
    app = create_app(stack=stack)
    app.testing = True
    client = app.test_client()
    connections = [
        client.post("/api/connections/", json={"name": name, "type": "postgresql", **postgres_db}).get_json()[
            "connection"
        ]["id"]
        for name in ("Shop PG", "Archive PG")
    ]
    tag = uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))  # no digit a search hits
    datasets = (f"list_{tag}_a", f"list_{tag}_b")

    def create(i):
        response = app.test_client().post("/api/etl/jobs/", json=job_number(i, datasets, connections))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["job"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = list(pool.map(create, range(JOBS)))
    seconds = time.monotonic() - started
    for job in jobs[::30]:
        assert client.post(f"/api/etl/jobs/{job['id']}/pause/", json={}).status_code == 200

    def history(job):
        for hours in range(10, 0, -1):
            when = stack.clock() - timedelta(hours=hours)
            save_run(stack, Run.new(job["id"], "schedule", when).finished(RunStatus.SUCCEEDED, when))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(history, jobs))
    yield Listing(client, stack, jobs, datasets, seconds)
    stack.close()


def listed(client, query=""):
    response = client.get(f"/api/etl/jobs/?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(answer):
    return [job["name"] for job in answer["jobs"]]


def every_page(client, query, token=None):
    """Every page from the one `token` starts (None: the first), following next_page_token."""
    pages = []
    while True:
        answer = listed(client, query + (f"&page_token={token}" if token else ""))
        pages.append(answer)
        token = answer["next_page_token"]
        if token is None:
            return pages


def test_paging_through_300_jobs(listing):
    client = listing.client
    pages = every_page(client, "page_size=50")
    assert [len(p["jobs"]) for p in pages] == [50] * 6
    assert {p["total"] for p in pages} == {300}
    ids = [job["id"] for p in pages for job in p["jobs"]]
    created = sorted(listing.jobs, key=lambda j: (j["created_at"], j["id"]))
    assert ids == [job["id"] for job in created]  # created order, none twice, none left out

    by_name = every_page(client, "page_size=200&sort=name")
    assert [len(p["jobs"]) for p in by_name] == [200, 100]
    assert [n for p in by_name for n in names(p)] == sorted(job["name"] for job in listing.jobs)
    backwards = every_page(client, "page_size=120&sort=-name")
    assert [n for p in backwards for n in names(p)] == sorted((job["name"] for job in listing.jobs), reverse=True)

    first = listed(client, "page_token=" + pages[0]["next_page_token"])  # page_size defaults to 50
    assert [j["id"] for j in first["jobs"]] == [j["id"] for j in pages[1]["jobs"]]

    # a job created between two pages shows on the last one, and shifts none of the others
    body = orders_job(listing.jobs[0]["connection_id"], listing.datasets[0], name="Load 300 late")
    body["destination"]["table"] = "late"
    late = client.post("/api/etl/jobs/", json=body).get_json()["job"]
    try:
        rest = every_page(client, "page_size=50", pages[2]["next_page_token"])
        assert [j["id"] for p in rest for j in p["jobs"]] == ids[150:] + [late["id"]]
        assert rest[0]["total"] == 301
    finally:
        client.delete(f"/api/etl/jobs/{late['id']}/", json={"drop_table": True})


def test_every_listed_job_has_its_health_and_last_run(listing):
    answer = listed(listing.client, "page_size=200&sort=name")
    job = answer["jobs"][1]
    assert job["health"] == {"status": "ok"}
    assert job["last_run"]["status"] == "succeeded"
    assert job["cron"] == "1 * * * *" and len(job["next_runs"]) == 3
    assert "lease" not in job
    assert answer["jobs"][0]["health"] == {"status": "paused", "reason": "Paused: no scheduled runs."}


def test_without_paging_parameters_every_job_is_listed(listing):
    """What the CLI (jobs list, and jobs apply matching jobs by name) and earlier clients rely on."""
    answer = listed(listing.client)
    assert len(answer["jobs"]) == 300 and answer["total"] == 300 and answer["next_page_token"] is None
    assert {j["id"] for j in answer["jobs"]} == {j["id"] for j in listing.jobs}
    paused = listed(listing.client, "state=paused")  # filters without paging: every match
    assert len(paused["jobs"]) == paused["total"] == 10 and paused["next_page_token"] is None


def test_listing_300_jobs_answers_well_under_a_second(listing):
    """Each of the 300 jobs has 10 runs: a sort by health or last run reads all 3,000."""
    timings = {}
    for query in ("", "page_size=50", "page_size=50&sort=health", "page_size=50&sort=-last_run", "health=failing"):
        listed(listing.client, query)  # warm
        started = time.monotonic()
        for _ in range(3):
            listed(listing.client, query)
        timings[query or "(all jobs)"] = (time.monotonic() - started) / 3
    print(f"\n300 jobs created through the API in {listing.seconds_to_create:.1f} s; listing them:")
    for query, seconds in timings.items():
        print(f"  GET /api/etl/jobs/?{query}: {seconds * 1000:.0f} ms")
    assert max(timings.values()) < 1, timings  # measured 0.1-0.3 s on two busy cores


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("load 123", ["Load 123 orders"]),  # by name, any case, every word
        ("LOAD 123 ORDERS", ["Load 123 orders"]),
        ("123 invoices", []),  # every word must match
        (
            "archive pg 00",
            ["Load 001 refunds", "Load 003 orders", "Load 005 invoices", "Load 007 refunds", "Load 009 orders"],
        ),
        ("empty_table", [f"Load {i:03} {WORDS[i % 3]}" for i in range(7, 300, 50)]),  # source schema.table
        ("public.empty", [f"Load {i:03} {WORDS[i % 3]}" for i in range(7, 300, 50)]),
        ("_b.orders_29", [f"Load {i:03} {WORDS[i % 3]}" for i in range(290, 300)]),  # destination dataset.table
    ],
)
def test_search_by_name_source_or_destination(listing, q, expected):
    from urllib.parse import quote

    answer = listed(listing.client, f"q={quote(q)}&sort=name&page_size=200")
    assert names(answer) == expected
    assert answer["total"] == len(expected)


def test_search_by_destination_dataset_pages_too(listing):
    pages = every_page(listing.client, f"q={listing.datasets[1]}&page_size=40")
    assert [len(p["jobs"]) for p in pages] == [40, 40, 40, 30]
    assert {j["destination"]["dataset"] for p in pages for j in p["jobs"]} == {listing.datasets[1]}


def test_filters_by_state_and_health(listing):
    client = listing.client
    paused = listed(client, "state=paused&page_size=200")
    assert sorted(names(paused)) == [j["name"] for j in listing.jobs[::30]]
    assert {j["state"] for j in paused["jobs"]} == {"paused"}
    assert names(listed(client, "health=paused&page_size=200")) == names(paused)
    active = listed(client, "state=active&health=ok&page_size=100")
    assert active["total"] == 290 and len(active["jobs"]) == 100
    assert listed(client, "health=failing")["jobs"] == []
    assert listed(client, "q=load+030&state=active")["jobs"] == []  # Load 030 is paused


def test_sort_by_health_puts_paused_jobs_last(listing):
    answer = listed(listing.client, "sort=health&page_size=200&page_token=")  # an empty token: the first page
    assert [j["health"]["status"] for j in answer["jobs"]] == ["ok"] * 200
    last = every_page(listing.client, "sort=health&page_size=200")[-1]
    assert [j["health"]["status"] for j in last["jobs"]][-10:] == ["paused"] * 10
    first = listed(listing.client, "sort=-health&page_size=10")
    assert {j["health"]["status"] for j in first["jobs"]} == {"paused"}


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ("page_size=0", "page_size", "must be a whole number from 1 to 200"),
        ("page_size=201", "page_size", "must be a whole number from 1 to 200"),
        ("page_size=ten", "page_size", "must be a whole number from 1 to 200"),
        ("page_size=-5", "page_size", "must be a whole number from 1 to 200"),
        ("page_size=%EF%BC%95", "page_size", "must be a whole number from 1 to 200"),  # a full-width 5
        ("page_token=not-a-token", "page_token", "is not a page token of this listing: list again without it"),
        ("page_token=W10", "page_token", "is not a page token of this listing: list again without it"),  # "[]"
        ("state=running", "state", "must be one of active, paused"),
        ("health=bad", "health", "must be one of stuck, failing, mismatch, ok, paused"),
        ("sort=size", "sort", "must be one of created, name, last_run, health, with a leading - for descending"),
        ("q=a%00b", "q", "must not contain control characters (NUL, tab, line breaks, ...)"),
    ],
)
def test_a_bad_query_is_a_400_naming_its_field(client, query, field, problem):
    response = client.get(f"/api/etl/jobs/?{query}")
    assert response.status_code == 400
    assert response.get_json() == {
        "status": "error",
        "message": f"{field}: {problem}",
        "details": [{"field": field, "problem": problem}],
    }


def test_a_page_token_only_continues_its_own_listing(listing):
    token = listed(listing.client, "sort=name&page_size=10")["next_page_token"]
    for other in ("sort=health", "sort=-name", "sort=name&q=load", "sort=name&state=active"):
        response = listing.client.get(f"/api/etl/jobs/?{other}&page_token={token}")
        assert response.status_code == 400
        assert response.get_json()["details"] == [
            {
                "field": "page_token",
                "problem": "belongs to a listing with another q, state, health or sort: "
                "send the same ones, or start again",
            }
        ]
    assert listed(listing.client, f"sort=name&page_size=30&page_token={token}")["jobs"][0]["name"] == "Load 010 refunds"


# --- Health, from real runs ---------------------------------------------------------------------------


def health_of(client, job_id):
    return client.get(f"/api/etl/jobs/{job_id}/").get_json()["job"]["health"]


def events_job(client, pg, table, dataset, name):
    return make_job(
        client, pg, table, dataset, name=name, destination={"mode": "new", "dataset": dataset, "table": name}
    )


def test_health_of_ok_failing_paused_stuck_and_mismatched_jobs(client, stack, pg, pg_sql, table, dataset):
    pg_sql(f"INSERT INTO {table} VALUES (1, 'a', 1, '{ago(60)}'), (2, 'b', 2, '{ago(50)}')")
    doomed = f"{table}_doomed"
    pg_sql(f"CREATE TABLE {doomed} (LIKE {table} INCLUDING ALL)")
    jobs = {name: events_job(client, pg, doomed if name == "failing" else table, dataset, name) for name in
            ("ok", "failing", "paused", "stuck", "mismatch", "never")}  # fmt: skip
    ids = {name: job["id"] for name, job in jobs.items()}
    assert health_of(client, ids["never"]) == {"status": "ok"}

    assert run(stack, ids["ok"])["status"] == "succeeded"
    assert health_of(client, ids["ok"]) == {"status": "ok"}

    # failing: since the first failure after the last success
    assert run(stack, ids["failing"])["status"] == "succeeded"
    pg_sql(f"DROP TABLE {doomed}")
    failures = []
    for _ in range(2):
        with pytest.raises(EtlError):
            run(stack, ids["failing"])
        failures.append(client.get(f"/api/etl/jobs/{ids['failing']}/runs/").get_json()["runs"][0])
    assert [f["status"] for f in failures] == ["failed", "failed"]
    health = health_of(client, ids["failing"])
    assert (health["status"], health["since"]) == ("failing", failures[0]["started_at"])
    assert health["reason"] == f"2 runs have failed: {failures[1]['error']}"

    assert client.post(f"/api/etl/jobs/{ids['paused']}/pause/", json={}).status_code == 200
    assert health_of(client, ids["paused"])["status"] == "paused"

    # stuck: a run holds the lease (its heartbeat renews it) for longer than a lease, and a trigger is skipped
    holder = Run.new(ids["stuck"], "schedule", stack.clock() - timedelta(seconds=stack.settings.lease_seconds + 60))
    save_run(stack, holder)
    renewed = (stack.clock() + timedelta(seconds=30)).isoformat()
    stack.store.transact("jobs", ids["stuck"], lambda j: {**j, "lease": {"run_id": holder.id, "expires_at": renewed}})
    assert run(stack, ids["stuck"])["status"] == "skipped"
    stuck = health_of(client, ids["stuck"])
    assert (stuck["status"], stuck["since"]) == ("stuck", holder.started_at.isoformat())
    assert f"run {holder.id} has held the job since" in stuck["reason"]

    # mismatch: the run's verification, stored with it as the verification step stores it
    verified = run(stack, ids["mismatch"])
    checked_at = stack.clock().isoformat()
    result = {
        "status": "mismatched",
        "buckets": 4,
        "mismatched": [{"bucket": "2024-01-02", "source_rows": 3, "destination_rows": 2}],
        "checked_at": checked_at,
    }
    stack.store.transact(runs_collection(ids["mismatch"]), verified["id"], lambda r: {**r, "verification": result})
    assert health_of(client, ids["mismatch"]) == {
        "status": "mismatch",
        "since": checked_at,
        "reason": f"The last verification (run {verified['id']}) found the destination differs from the source: "
        "1 of 4 buckets differ.",
    }
    (shown,) = client.get(f"/api/etl/jobs/{ids['mismatch']}/runs/").get_json()["runs"]
    assert shown["verification"] == result  # the run history shows it

    # the list filters and sorts by health, and by the last run
    by_health = listed(client, "sort=health")
    assert [j["name"] for j in by_health["jobs"]] == ["stuck", "failing", "mismatch", "never", "ok", "paused"]
    assert names(listed(client, "health=failing")) == ["failing"]
    assert names(listed(client, "health=stuck&state=active")) == ["stuck"]
    assert names(listed(client, "health=ok&sort=-name")) == ["ok", "never"]
    assert names(listed(client, "sort=-last_run"))[0] == "mismatch"
    assert set(names(listed(client, "sort=last_run"))[:2]) == {"never", "paused"}  # the two that never ran

    # a success ends the failing streak; a matched verification clears a mismatch
    pg_sql(f"CREATE TABLE {doomed} (LIKE {table} INCLUDING ALL)")
    try:
        assert run(stack, ids["failing"])["status"] == "succeeded"
    finally:
        pg_sql(f"DROP TABLE {doomed}")
    assert health_of(client, ids["failing"]) == {"status": "ok"}
    again = run(stack, ids["mismatch"])
    matched = {"status": "matched", "buckets": 4, "mismatched": [], "checked_at": stack.clock().isoformat()}
    stack.store.transact(runs_collection(ids["mismatch"]), again["id"], lambda r: {**r, "verification": matched})
    assert health_of(client, ids["mismatch"]) == {"status": "ok"}


def test_a_skip_under_a_lease_younger_than_lease_seconds_is_not_stuck(client, stack, pg, table, dataset):
    job = events_job(client, pg, table, dataset, "busy")
    holder = Run.new(job["id"], "schedule", stack.clock() - timedelta(seconds=10))
    save_run(stack, holder)
    later = (stack.clock() + timedelta(seconds=60)).isoformat()
    stack.store.transact("jobs", job["id"], lambda j: {**j, "lease": {"run_id": holder.id, "expires_at": later}})
    assert run(stack, job["id"])["status"] == "skipped"
    assert health_of(client, job["id"]) == {"status": "ok"}
