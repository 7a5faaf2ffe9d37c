"""What a job's runs used of BigQuery, as the API shows it: per run (the run's `bigquery`) and per
month (the job's `bigquery_by_month`), the month's sums being its runs'."""

from datetime import datetime, timezone

from tests.integration.loading import make_job, run


def test_a_job_shows_its_bigquery_use_per_run_and_per_month(client, stack, pg, table, pg_sql, dataset):
    pg_sql(f"INSERT INTO {table} SELECT g, 'n', g, now() - interval '1 hour' FROM generate_series(1, 50) g")
    job = make_job(client, pg, table, dataset, primary_key=["id"])
    run(stack, job["id"])
    run(stack, job["id"])
    runs = client.get(f"/api/etl/jobs/{job['id']}/runs/").get_json()["runs"]
    assert all(r["bigquery"]["jobs"] >= 1 for r in runs)
    (month,) = client.get(f"/api/etl/jobs/{job['id']}/").get_json()["job"]["bigquery_by_month"]
    assert month["month"] == datetime.now(timezone.utc).strftime("%Y-%m")
    assert (month["runs"], month["jobs"]) == (2, sum(r["bigquery"]["jobs"] for r in runs))
