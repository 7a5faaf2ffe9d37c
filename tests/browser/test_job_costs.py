"""A job's page shows what each run used of BigQuery and the job's use per month."""

import re

from playwright.sync_api import expect

from tests.integration.loading import orders_job, run


def test_the_job_page_shows_bigquery_use(page, server, client, stack, pg, dataset):
    created = client.post("/api/etl/jobs/", json=orders_job(pg, dataset, schedule={"type": "manual"}))
    assert created.status_code == 201, created.get_json()
    job = created.get_json()["job"]
    done = run(stack, job["id"])
    page.goto(f"{server}/jobs/{job['id']}")
    cell = page.locator(f"tr[data-run='{done['id']}'] td.bigquery")
    expect(cell).to_have_text(re.compile(rf"^{done['bigquery']['jobs']} jobs"))
    per_month = re.compile(r"BigQuery per month\d{4}-\d{2}: 1 runs, \d+ jobs")
    expect(page.locator("#job-settings")).to_contain_text(per_month)
