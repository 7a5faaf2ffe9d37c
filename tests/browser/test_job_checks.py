"""A job's checks in the browser (issue 15): Verify on a job's page says "matched", and after a row
is deleted from BigQuery behind the product's back, Verify and repair finds it and puts it right;
the wizard sets a job's checks (rows deleted at the source marked) and alert channels, which the
job's page shows, and Find deleted rows sweeps; a table without a primary key cannot have its
deleted rows found, and says why; the Edit dialog changes checks and channels."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from etlwizard.run.deletes import NO_KEY
from tests.browser.test_jobs_page import job_body, post
from tests.browser.test_wizard import choose_table, next_step
from tests.integration.loading import run


@pytest.fixture
def dataset():
    return f"c_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def connection(server, postgres_db):
    return post(server, "/api/connections/", {"name": "Shop DB", "type": "postgresql", **postgres_db})["connection"]


def test_verify_and_repair_on_a_jobs_page(page, server, stack, connection, dataset):
    job = post(server, "/api/etl/jobs/", job_body(connection["id"], dataset, 5))["job"]
    run(stack, job["id"])
    page.goto(f"{server}/jobs/{job['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nightly 005 invoices")
    expect(page.locator("#job-settings")).to_contain_text("Verificationafter every run")
    expect(page.locator("#job-settings")).to_contain_text("Rows deleted at the sourcekept")
    expect(page.locator("#check-actions")).to_have_text("VerifyVerify and repair")  # no sweep: the job keeps them

    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.locator("#check-result .verdict")).to_have_text(re.compile(r"^matched: \d+ buckets?$"))
    history = page.locator("#runs-table tbody tr")
    expect(history).to_have_count(2)
    expect(history.first.locator("td").nth(1)).to_have_text("verify")
    expect(history.first.locator(".verification .verdict")).to_have_text(re.compile(r"^matched"))
    expect(page.locator("#history-chart rect.bar")).to_have_count(1)  # the check loads nothing: not charted
    expect(page.locator("#job-health .health")).to_have_text("ok")

    table = stack.warehouse.quoted(dataset, "orders_005")
    stack.warehouse.query(f"DELETE FROM {table} WHERE order_no = 1")
    page.get_by_role("button", name="Verify and repair").click()
    result = page.locator("#check-result")
    expect(result.locator(".verdict").first).to_have_text(re.compile(r"^mismatched: 1 of \d+ buckets?$"))
    expect(result.locator(".repaired")).to_contain_text(re.compile(r"After repair: matched"))
    expect(history).to_have_count(3)
    expect(page.locator("#job-health .health")).to_have_text("ok")
    assert [r[0] for r in stack.warehouse.query(f"SELECT order_no FROM {table} ORDER BY order_no")] == [1, 2]


def test_the_wizard_sets_checks_and_alerts_and_the_job_page_shows_them(page, server, stack, connection, dataset):
    page.goto(server + "/")
    choose_table(page, "Shop DB", "public.composite_pk")
    expect(page.locator("#columns-table tbody tr")).to_have_count(4)
    next_step(page)

    expect(page.get_by_label("Verify after each run")).to_be_checked()
    expect(page.get_by_label("Repair what differs")).not_to_be_checked()
    expect(page.get_by_label("Keep them")).to_be_checked()
    expect(page.get_by_label(re.compile("Sweep after every run"))).to_be_hidden()
    page.get_by_label("Mark them").check()
    expect(page.get_by_label(re.compile("Sweep after every run"))).to_be_visible()
    page.get_by_label("Historical backfill", exact=True).select_option("all")
    page.get_by_label("Webhook URL").fill("https://hooks.example.com/services/T1/B2/s3cr3t-token")
    page.get_by_label("Pub/Sub topic").fill("etl-alerts")
    page.get_by_label("Dataset", exact=True).fill(dataset)
    page.get_by_label("Table name", exact=True).fill("orders")

    page.get_by_label(re.compile("Catalog: replace")).check()  # a catalog load drops deleted rows itself
    expect(page.locator("#deleted-rows-options")).to_be_hidden()
    page.get_by_label(re.compile("Transactional: append")).check()
    expect(page.get_by_label("Mark them")).to_be_checked()
    next_step(page)

    page.get_by_label("Runs", exact=True).select_option("manual")
    page.get_by_label("Job name", exact=True).fill("Marked orders")
    summary = page.locator("#summary")
    expect(summary).to_contain_text(
        "verify after each run; rows deleted at the source marked (_etl_deleted_at), swept daily"
    )
    expect(summary).to_contain_text("webhook at hooks.example.com and Pub/Sub topic etl-alerts")
    expect(summary).not_to_contain_text("s3cr3t-token")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#created")).to_contain_text("Job “Marked orders” created.")

    page.get_by_role("link", name="Open the job's page").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Marked orders")
    settings = page.locator("#job-settings")
    expect(settings).to_contain_text("Rows deleted at the sourcemarked (_etl_deleted_at), swept once a day after a run")
    expect(settings).to_contain_text("Alerts towebhook at hooks.example.com and Pub/Sub topic etl-alerts")
    expect(page.locator("body")).not_to_contain_text("s3cr3t-token")

    # the sweep on demand, from the job's page
    page.get_by_role("button", name="Run now Marked orders").click()
    expect(page.locator("#runs-table tbody tr .run-status").first).to_have_text("succeeded")
    page.get_by_role("button", name="Find deleted rows").click()
    expect(page.locator("#check-result")).to_have_text("Deleted rows: 0 marked")
    expect(page.locator("#runs-table tbody tr").first.locator(".deleted-rows")).to_have_text("0 marked")


def test_a_table_without_a_key_cannot_have_its_deleted_rows_found(page, server, connection, dataset):
    page.goto(server + "/")
    choose_table(page, "Shop DB", "public.no_pk")
    expect(page.locator("#columns-table tbody tr")).to_have_count(2)
    next_step(page)
    expect(page.get_by_label("Mark them")).to_be_disabled()
    expect(page.get_by_label("Remove them")).to_be_disabled()
    expect(page.get_by_label("Keep them")).to_be_checked()
    expect(page.locator("#deleted-rows-why")).to_have_text(f"{NO_KEY[0].upper()}{NO_KEY[1:]}.")


def test_checks_and_alert_channels_are_edited_on_a_jobs_page(page, server, connection, dataset):
    job = post(server, "/api/etl/jobs/", job_body(connection["id"], dataset, 9))["job"]
    page.goto(f"{server}/jobs/{job['id']}")
    settings = page.locator("#job-settings")
    expect(settings).to_contain_text("Rows deleted at the sourcekept")

    page.get_by_role("button", name="Edit Nightly 009 orders").click()
    dialog = page.locator("#edit-dialog")
    expect(dialog.get_by_label("Verify after each run")).to_be_checked()
    expect(dialog.get_by_label(re.compile("Sweep after every run"))).to_be_hidden()
    dialog.get_by_label("Rows deleted at the source").select_option("remove")
    dialog.get_by_label(re.compile("Sweep after every run")).check()
    dialog.get_by_label("Repair what differs").check()
    dialog.get_by_label("Webhook URL").fill("http://hooks.example.com/plain")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-error")).to_have_text("alerts.webhook_url: a webhook must be an https:// URL")
    dialog.get_by_label("Webhook URL").fill("https://hooks.example.com/services/T1/B2/t0ken")
    dialog.get_by_label("Pub/Sub topic").fill("etl-alerts")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#job-status")).to_have_text("Nightly 009 orders saved.")
    expect(settings).to_contain_text("Verificationafter every run, and repairs the buckets that differ")
    expect(settings).to_contain_text("Rows deleted at the sourceremoved, swept after every run")
    expect(settings).to_contain_text("Alerts towebhook at hooks.example.com and Pub/Sub topic etl-alerts")
    expect(page.get_by_role("button", name="Find deleted rows")).to_be_visible()

    page.get_by_role("button", name="Edit Nightly 009 orders").click()
    expect(dialog.get_by_label("Webhook URL")).to_have_value("")  # its URL is never shown
    expect(dialog).to_contain_text("Now: a webhook at hooks.example.com.")
    dialog.get_by_label("Remove the webhook").check()
    dialog.get_by_label("Pub/Sub topic").fill("")
    dialog.get_by_label("Rows deleted at the source").select_option("keep")
    dialog.get_by_role("button", name="Save").click()
    expect(settings).to_contain_text("Alerts tothe deployment's default channels")
    expect(settings).to_contain_text("Rows deleted at the sourcekept")
    expect(page.get_by_role("button", name="Find deleted rows")).to_have_count(0)
