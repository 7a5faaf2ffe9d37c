"""The demo: the embedded stack (BigQuery emulator, SQLite job store, file secrets, in-process
scheduler and run workers), two sample sources (a PostgreSQL shop, web/sample_shop.py, and a
dataset in the emulator), and the wizard on http://localhost:$PORT. Run it with bin/demo.
"""

import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pg8000.exceptions
from google.cloud import bigquery

from etlwizard import connections
from etlwizard.bigquery_client import make_client
from etlwizard.config import Settings
from etlwizard.emulator import BigQueryEmulator
from etlwizard.errors import EtlError
from etlwizard.logs import configure_logging
from etlwizard.run.engine import handle_message
from etlwizard.run.recovery import recover
from etlwizard.stack import Stack
from web.app import create_app
from web.sample_shop import SampleShop, start_sample_shop

SAMPLE_DATASET = "sample_shop"
STOP_SECONDS = 7  # of the 10 s a supervisor (Cloud Run, systemd) gives before SIGKILL
SAMPLE_CONNECTION = "Sample shop (BigQuery emulator)"

CUSTOMERS = [
    bigquery.SchemaField("customer_id", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("name", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("country", "STRING"),
    bigquery.SchemaField("created_at", "TIMESTAMP", mode="REQUIRED"),
]
ORDERS = [
    bigquery.SchemaField("order_id", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("customer_id", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("amount", "NUMERIC", mode="REQUIRED"),
    bigquery.SchemaField("status", "STRING"),
    bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
    bigquery.SchemaField("details", "JSON"),
    bigquery.SchemaField("ordered_on", "DATE"),
    bigquery.SchemaField("updated_at", "TIMESTAMP", mode="REQUIRED"),
]


def sample_rows(seed: int = 7):
    rng = random.Random(seed)
    # Orders every 7 hours up to an hour ago: the wizard's default backfill (last 30 days) finds ~100.
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=7 * 500 + 1)
    countries = ["DE", "FR", "US", "BR", "JP", None]
    customers = [
        {
            "customer_id": i,
            "name": f"Customer {i}",
            "country": rng.choice(countries),
            "created_at": (start + timedelta(days=i, microseconds=rng.randrange(10**6))).isoformat(),
        }
        for i in range(1, 51)
    ]
    orders = []
    for i in range(1, 501):
        at = start + timedelta(hours=7 * i, microseconds=rng.randrange(10**6))
        orders.append(
            {
                "order_id": i,
                "customer_id": rng.randint(1, 50),
                "amount": str(Decimal(rng.randrange(100, 100000)) / 100),
                "status": rng.choice(["new", "paid", "shipped", "returned"]),
                "tags": rng.sample(["gift", "express", "bulk", "promo"], rng.randint(0, 2)),
                "details": {"items": rng.randint(1, 5), "channel": rng.choice(["web", "app"])},
                "ordered_on": at.date().isoformat(),
                "updated_at": at.isoformat(),
            }
        )
    return customers, orders


def seed_sample_dataset(client: bigquery.Client) -> None:
    """Create the sample dataset once; a second demo start keeps it as it is."""
    dataset = f"{client.project}.{SAMPLE_DATASET}"
    if any(d.dataset_id == SAMPLE_DATASET for d in client.list_datasets()):
        return
    client.create_dataset(dataset)
    customers, orders = sample_rows()
    for name, schema, rows in (("customers", CUSTOMERS, customers), ("orders", ORDERS, orders)):
        table = client.create_table(bigquery.Table(f"{dataset}.{name}", schema=schema))
        data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
        config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
        client.load_table_from_file(data, table, job_config=config).result()


def ensure_sample_connection(stack: Stack) -> None:
    if not any(c["name"] == SAMPLE_CONNECTION for c in connections.list_connections(stack)):
        connections.create_connection(
            stack, {"name": SAMPLE_CONNECTION, "type": "bigquery", "project": stack.settings.project}
        )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings)  # readable text (ETL_LOG_FORMAT=json: Cloud Logging's JSON lines)
    sample_server, sample_orders = settings.sample_postgres, settings.sample_orders
    emulator = BigQueryEmulator(
        settings.project, settings.data_dir / "bigquery", log_path=settings.data_dir / "bigquery.log"
    )
    settings = replace(settings, bigquery_endpoint=emulator.start())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain `kill` stops as Ctrl+C does
    stack = Stack(settings, run_handler=handle_message)
    shop = None
    try:
        # before recover(): a job it runs again may read the sample shop
        shop = open_sample_shop(stack, sample_server, sample_orders)
        recover(stack)  # runs a killed demo left `running` are over: their jobs run again at once
        seed_sample_dataset(make_client(settings))
        ensure_sample_connection(stack)
        app = create_app(stack=stack, featured_connection=shop.connection_id if shop else None)
        stack.scheduler.start()  # scheduled jobs run while the demo runs
        print(
            f"\n  ETL Wizard is running: http://localhost:{settings.port}/\n"
            + (f"  {shop.describe()}\n" if shop else "")
            + f"  (data in {settings.data_dir}; Ctrl+C stops)\n",
            flush=True,
        )
        app.run(host="127.0.0.1", port=settings.port, threaded=True)
    finally:
        stop(stack, emulator, shop)


def open_sample_shop(stack: Stack, server: str, orders: int) -> SampleShop | None:
    """The PostgreSQL sample, or None (off, or it could not be had: the demo runs without it)."""
    if server == "off":
        return None
    try:
        return start_sample_shop(stack, server, orders)
    except (EtlError, OSError, pg8000.exceptions.Error, subprocess.SubprocessError) as e:
        logging.getLogger(__name__).warning("the PostgreSQL sample shop is not available: %s", e)
        return None


def stop(stack: Stack, emulator: BigQueryEmulator, shop: SampleShop | None = None) -> None:
    """Within 10 s: runs in flight stop, record themselves interrupted and free their jobs (they
    need the emulator for that: it stops last, with the sample's embedded PostgreSQL); a run that
    does not stop in time is left behind, and the next start finds it."""
    stack.stopping.set()
    stack.scheduler.stop()
    drained = stack.publisher.drain(timeout=STOP_SECONDS)
    stack.close()
    embedded = shop.embedded if shop else None
    if embedded:
        embedded.begin_stop()  # shuts down while the emulator does
    emulator.stop()
    if embedded:
        embedded.stop()
    if not drained:
        logging.getLogger(__name__).warning("runs still in flight after %d s: stopping without them", STOP_SECONDS)
        os._exit(1)


if __name__ == "__main__":
    main()
