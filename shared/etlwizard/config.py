"""The only reader of the environment: env -> a frozen Settings.

Tests build Settings directly; nothing else in the code base looks at os.environ.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError

STACKS = ("embedded", "gcp")
# "auto": one JSON object a line (Cloud Logging's structured format) on the gcp stack, text elsewhere
LOG_FORMATS = ("auto", "json", "text")


@dataclass(frozen=True)
class Settings:
    # "embedded": local job store, secrets in a 0600 file, the BigQuery emulator.
    # "gcp": Firestore, Secret Manager, BigQuery.
    stack: str = "embedded"
    project: str = "etl-wizard-local"
    dataset: str = "etl_wizard"
    region: str = "europe-west1"
    # Where the demo serves the wizard (Cloud Run's convention: $PORT, default 8080).
    port: int = 8080
    # The Pub/Sub topic run-job is subscribed to; Cloud Scheduler and "Run now" publish to it.
    run_topic: str = "etl-run-job"
    # Base URL of a BigQuery-compatible REST endpoint (the emulator); None = Google's.
    bigquery_endpoint: str | None = None
    # Where the embedded stack keeps its job store and secrets file: outside the repository.
    data_dir: Path = Path.home() / ".local" / "share" / "etl-wizard"
    connect_timeout: float = 5.0
    # Where Cloud Run and 2nd-gen Cloud Functions mount Cloud SQL instances' Unix sockets
    # (/cloudsql/<project:region:instance>): the bulk readers' way to a Cloud SQL database.
    cloudsql_socket_dir: Path = Path("/cloudsql")
    query_timeout: float = 60.0
    # Catalog connections kept open per saved connection, per process: previews, tests and runs'
    # catalog queries share them; a request finding all busy waits up to connect_timeout.
    pool_size: int = 8
    sample_size: int = 10
    # Above this many rows (by the catalog's estimate) the preview reports the estimate
    # instead of running COUNT(*).
    exact_count_limit: int = 1_000_000

    # The demo's PostgreSQL sample shop (web/sample_shop.py): the server to put it on when it answers
    # (a postgresql:// URL naming the database; "off": none), else one of the demo's own; and the
    # rows of its orders table when first made.
    sample_postgres: str = "postgresql://postgres@127.0.0.1:5432/etl_wizard_sample"
    sample_orders: int = 1_000_000

    # The etl_api function's URL: set, the wizard passes its /api/ calls to it over HTTPS with ID
    # tokens; None, it serves the API itself over this stack.
    api_url: str | None = None
    # A run reads cursor values up to the source's clock minus this lag, so rows still committing
    # are read by the next run instead of skipped.
    run_lag_seconds: int = 120
    # A run's lease on its job lapses this long after its last heartbeat (it beats every quarter of
    # it): a worker that died (killed, out of memory, shut down) blocks its job no longer than this.
    lease_seconds: int = 120
    # Rows per batch read from a source, and per load job into the staging table.
    batch_rows: int = 20_000
    chunk_rows: int = 250_000
    # Load jobs of one run in flight at once (each takes BigQuery seconds, whatever its size).
    loads_in_flight: int = 4
    # A window holding more rows than this is split into chunks of about this many rows, each a
    # message of its own: parallel run-job calls, checkpointed one by one.
    fanout_rows: int = 5_000_000

    # Alerts (alerts.py) every job sends besides its own channels: a Pub/Sub topic of this project
    # (a name, or projects/P/topics/T), and an https webhook (Slack's incoming webhooks, or any
    # receiver of JSON). The webhook's URL holds its token: never shown (repr=False), logged or stored.
    alert_topic: str | None = None
    alert_webhook: str | None = field(default=None, repr=False)
    # CA certificates (PEM) webhook servers are verified against instead of the system's store.
    alert_ca_file: Path | None = None
    # Each webhook attempt waits this long for an answer (three attempts, with backoff).
    alert_timeout: float = 5.0
    log_format: str = "auto"

    def __post_init__(self) -> None:
        if self.stack not in STACKS:
            raise ConfigError(f"ETL_STACK must be one of {', '.join(STACKS)}, not {self.stack!r}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"ETL_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}")
        if self.alert_webhook is not None and webhook_problem(self.alert_webhook):
            # not echoed: the URL is a secret
            raise ConfigError(f"ETL_ALERT_WEBHOOK: {webhook_problem(self.alert_webhook)}")

    @property
    def logs_as_json(self) -> bool:
        """Whether log lines are Cloud Logging's structured JSON (logs.py) rather than text."""
        return self.log_format == "json" or (self.log_format == "auto" and self.stack == "gcp")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = {k: v for k, v in (os.environ if environ is None else environ).items() if v != ""}
        given: dict[str, Any] = {
            "stack": env.get("ETL_STACK"),
            "project": env.get("ETL_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT"),
            "dataset": env.get("ETL_DATASET"),
            "region": env.get("ETL_REGION"),
            "port": _number(env, "PORT", int),
            "run_topic": env.get("ETL_RUN_TOPIC"),
            "bigquery_endpoint": env.get("ETL_BIGQUERY_ENDPOINT"),
            "data_dir": Path(env["ETL_DATA_DIR"]) if env.get("ETL_DATA_DIR") else None,
            "connect_timeout": _number(env, "ETL_CONNECT_TIMEOUT", float),
            "cloudsql_socket_dir": Path(env["ETL_CLOUDSQL_SOCKET_DIR"]) if env.get("ETL_CLOUDSQL_SOCKET_DIR") else None,
            "query_timeout": _number(env, "ETL_QUERY_TIMEOUT", float),
            "pool_size": _number(env, "ETL_POOL_SIZE", int),
            "sample_size": _number(env, "ETL_SAMPLE_SIZE", int),
            "exact_count_limit": _number(env, "ETL_EXACT_COUNT_LIMIT", int),
            "run_lag_seconds": _number(env, "ETL_RUN_LAG_SECONDS", int),
            "lease_seconds": _number(env, "ETL_LEASE_SECONDS", int),
            "batch_rows": _number(env, "ETL_BATCH_ROWS", int),
            "chunk_rows": _number(env, "ETL_CHUNK_ROWS", int),
            "loads_in_flight": _number(env, "ETL_LOADS_IN_FLIGHT", int),
            "fanout_rows": _number(env, "ETL_FANOUT_ROWS", int),
            "api_url": env.get("ETL_API_URL"),
            "sample_postgres": env.get("ETL_SAMPLE_POSTGRES"),
            "sample_orders": _number(env, "ETL_SAMPLE_ORDERS", int),
            "alert_topic": env.get("ETL_ALERT_TOPIC"),
            "alert_webhook": env.get("ETL_ALERT_WEBHOOK"),
            "alert_ca_file": Path(env["ETL_ALERT_CA_FILE"]) if env.get("ETL_ALERT_CA_FILE") else None,
            "alert_timeout": _number(env, "ETL_ALERT_TIMEOUT", float),
            "log_format": env.get("ETL_LOG_FORMAT"),
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


def webhook_problem(url: str) -> str | None:
    """Why `url` cannot be an alert webhook (None: it can): https only, to a named host, without a
    user name or password in it. The sentence never repeats the URL, which holds the hook's token."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        return "not a URL"
    if parts.scheme != "https":
        return "a webhook must be an https:// URL"
    if not parts.hostname:
        return "a webhook URL needs a host"
    if parts.username is not None or parts.password is not None:
        return "a webhook URL carries no user name or password"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "a webhook URL has no spaces or control characters"
    return None


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, kind: Callable[[str], N]) -> N | None:
    raw = env.get(name)
    if raw is None:
        return None
    value: N | None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number, not {raw!r}")
    return value
