"""BigQuery as a source, against the emulator through the official client."""

import io
import json

import pytest
from google.cloud import bigquery

from etlwizard.bigquery_client import make_client


@pytest.fixture
def source_dataset(settings):
    client = make_client(settings)
    dataset = f"{settings.project}.src_{id(settings) % 10**8}"
    client.create_dataset(dataset)
    schema = [
        bigquery.SchemaField("id", "INTEGER", mode="REQUIRED"),
        bigquery.SchemaField("amount", "NUMERIC"),
        bigquery.SchemaField("ratio", "FLOAT"),
        bigquery.SchemaField("ok", "BOOLEAN"),
        bigquery.SchemaField("Order Date", "DATE"),
        bigquery.SchemaField("seen_at", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("local_at", "DATETIME"),
        bigquery.SchemaField("at_time", "TIME"),
        bigquery.SchemaField("payload", "JSON"),
        bigquery.SchemaField("raw", "BYTES"),
        bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
    ]
    table = client.create_table(bigquery.Table(f"{dataset}.events", schema=schema))
    rows = [
        {
            "id": 1,
            "amount": "12345678901234567890123456789.123456789",
            "ratio": 0.25,
            "ok": True,
            "Order Date": "2024-02-29",
            "seen_at": "2024-02-29T10:34:56.123456Z",
            "local_at": "2024-02-29T12:34:56.789012",
            "at_time": "23:59:59.999999",
            "payload": {"a": [1, "x"]},
            "tags": ["a", "b"],
        },
    ]
    data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
    client.load_table_from_file(
        data, table, job_config=bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    ).result()
    # Bytes by query: the emulator's NDJSON load does not base64-decode BYTES as BigQuery does.
    client.query_and_wait(f"UPDATE `{dataset}.events` SET raw = FROM_BASE64('AP8Q') WHERE id = 1")
    yield dataset.split(".")[1]
    client.delete_dataset(dataset, delete_contents=True)


def test_bigquery_source_preview(client, settings, source_dataset):
    created = client.post("/api/connections/", json={"name": "bq", "type": "bigquery", "project": settings.project})
    cid = created.get_json()["connection"]["id"]
    assert client.post(f"/api/connections/{cid}/test/").status_code == 200

    tables = client.get(f"/api/connections/{cid}/tables/").get_json()["tables"]
    assert {"schema_name": source_dataset, "table_name": "events", "kind": "table"} in tables

    p = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": source_dataset, "table_name": "events"}
    ).get_json()
    assert [
        (c["name"], c["source_type"], c["bigquery_type"], c["mode"], c["is_timestamp_candidate"]) for c in p["columns"]
    ] == [
        ("id", "INTEGER", "INT64", "REQUIRED", False),
        ("amount", "NUMERIC", "NUMERIC", "NULLABLE", False),
        ("ratio", "FLOAT", "FLOAT64", "NULLABLE", False),
        ("ok", "BOOLEAN", "BOOL", "NULLABLE", False),
        ("Order Date", "DATE", "DATE", "NULLABLE", True),
        ("seen_at", "TIMESTAMP", "TIMESTAMP", "REQUIRED", True),
        ("local_at", "DATETIME", "DATETIME", "NULLABLE", True),
        ("at_time", "TIME", "TIME", "NULLABLE", False),
        ("payload", "JSON", "JSON", "NULLABLE", False),
        ("raw", "BYTES", "BYTES", "NULLABLE", False),
        ("tags", "ARRAY<STRING>", "STRING", "REPEATED", False),
    ]
    assert p["sample_rows"] == [
        {
            "id": 1,
            "amount": "12345678901234567890123456789.123456789",
            "ratio": 0.25,
            "ok": True,
            "Order Date": "2024-02-29",
            "seen_at": "2024-02-29T10:34:56.123456+00:00",
            "local_at": "2024-02-29T12:34:56.789012",
            "at_time": "23:59:59.999999",
            "payload": {"a": [1, "x"]},
            "raw": "AP8Q",
            "tags": ["a", "b"],
        }
    ]
    assert (p["total_rows"], p["total_rows_exact"]) == (1, True)
    assert p["recommended_timestamp_column"] == "seen_at"


def test_bigquery_unknown_table_is_404(client, settings, source_dataset):
    cid = client.post(
        "/api/connections/", json={"name": "bq", "type": "bigquery", "project": settings.project}
    ).get_json()["connection"]["id"]
    for table in ["missing", "events`; DROP TABLE x; --"]:
        response = client.post(
            f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": source_dataset, "table_name": table}
        )
        assert response.status_code == 404
    response = client.post(
        f"/api/connections/{cid}/fetch-table-preview/", json={"schema_name": source_dataset, "table_name": "events"}
    )
    assert response.get_json()["total_rows"] == 1
