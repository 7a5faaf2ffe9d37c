"""The only reader of the environment: env -> a frozen Settings.

Tests build Settings directly; nothing else in the code base looks at os.environ.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

STACKS = ("embedded", "gcp")


@dataclass(frozen=True)
class Settings:
    # "embedded": local job store, secrets in a 0600 file, the BigQuery emulator.
    # "gcp": Firestore, Secret Manager, BigQuery.
    stack: str = "embedded"
    project: str = "etl-wizard-local"
    dataset: str = "etl_wizard"
    # Base URL of a BigQuery-compatible REST endpoint (the emulator); None = Google's.
    bigquery_endpoint: str | None = None
    # Where the embedded stack keeps its job store and secrets file: outside the repository.
    data_dir: Path = Path.home() / ".local" / "share" / "etl-wizard"
    connect_timeout: float = 5.0
    query_timeout: float = 60.0
    sample_size: int = 10
    # Above this many rows (by the catalog's estimate) the preview reports the estimate
    # instead of running COUNT(*).
    exact_count_limit: int = 1_000_000

    def __post_init__(self):
        if self.stack not in STACKS:
            raise ConfigError(f"ETL_STACK must be one of {', '.join(STACKS)}, not {self.stack!r}")

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        env = {k: v for k, v in (os.environ if environ is None else environ).items() if v != ""}
        given = {
            "stack": env.get("ETL_STACK"),
            "project": env.get("ETL_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT"),
            "dataset": env.get("ETL_DATASET"),
            "bigquery_endpoint": env.get("ETL_BIGQUERY_ENDPOINT"),
            "data_dir": Path(env["ETL_DATA_DIR"]) if env.get("ETL_DATA_DIR") else None,
            "connect_timeout": _number(env, "ETL_CONNECT_TIMEOUT", float),
            "query_timeout": _number(env, "ETL_QUERY_TIMEOUT", float),
            "sample_size": _number(env, "ETL_SAMPLE_SIZE", int),
            "exact_count_limit": _number(env, "ETL_EXACT_COUNT_LIMIT", int),
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


def _number(env, name, kind):
    raw = env.get(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number, not {raw!r}")
    return value
