"""Jobs in a YAML file that can live in version control: `jobs export` writes one, `jobs apply`
makes the wizard match it.

    connections:
      shop:                        # matched by name
        type: postgresql           # postgresql | mysql: host, port, database, user; bigquery: project
        host: db.internal
        port: 5432
        database: shop
        user: etl
        password_env: SHOP_DB_PASSWORD   # never the password itself; without it apply asks
    jobs:
      shop orders:                 # matched by name
        connection: shop           # a connection above, or one the wizard already has
        schema_name: public
        table_name: orders
        selected_columns: [id, amount, updated_at]
        load_type: transactional   # or catalog
        timestamp_column: updated_at
        primary_key: [id]
        historical_backfill: last_30_days   # read when the job is created, like historical_start_date
        destination: {dataset: shop, table: orders}
        schedule: {type: daily, time: '02:00', timezone: Europe/Berlin}

A job's fields are those of POST /api/etl/jobs/, with `connection` naming the connection. Apply
compares the fields a file states with the job: schedule and selected_columns are edited in place
(PATCH), connection, schema_name and table_name by a reconnect (same destination, watermark kept);
any other difference is reported and the job left alone: it must be deleted and created again.
Passwords are never read back, compared or changed: a connection that exists is left as it is.
"""

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..model import DEFAULT_PORTS
from ..scheduling import DAY_NAMES, Schedule
from ._api import JSON, ApiClient, CliError

CONNECTION_FIELDS = ("type", "host", "port", "database", "user", "project")
JOB_FIELDS = (
    "connection",
    "schema_name",
    "table_name",
    "selected_columns",
    "load_type",
    "timestamp_column",
    "primary_key",
    "historical_backfill",
    "historical_start_date",
    "destination",
    "schedule",
)
DESTINATION_FIELDS = ("dataset", "table", "mode", "add_missing_columns")
PATCHED = ("selected_columns", "schedule")
RECONNECTED = ("connection", "schema_name", "table_name")
CREATION_ONLY = ("historical_backfill", "historical_start_date")  # the watermark has moved on since
SCHEDULE_DEFAULTS: JSON = Schedule().to_dict()
HEADER = (
    "# ETL Wizard jobs: `etl-wizard jobs apply FILE` makes the wizard match this file.\n"
    "# No passwords here: add `password_env: VARIABLE` to a connection, or apply asks for it.\n"
)


@dataclass
class JobFile:
    connections: dict[str, JSON] = field(default_factory=dict)
    jobs: dict[str, JSON] = field(default_factory=dict)


# --- Reading a file --------------------------------------------------------------------------


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CliError(f"{where} must be a mapping of names to settings.")
    return value


def _known(entry: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise CliError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(allowed)}.")


def read_job_file(text: str, source: str) -> JobFile:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CliError(f"{source} is not valid YAML: {e}") from None
    document = _mapping(document, source)
    _known(document, ("connections", "jobs"), source)
    parsed = JobFile()
    for name, entry in _mapping(document.get("connections"), "connections").items():
        entry = _mapping(entry, f"connection {name!r}")
        _known(entry, CONNECTION_FIELDS + ("password_env",), f"connection {name!r}")
        if entry.get("type") not in ("postgresql", "mysql", "bigquery"):
            raise CliError(f"connection {name!r}: type must be postgresql, mysql or bigquery.")
        parsed.connections[name] = entry
    for name, entry in _mapping(document.get("jobs"), "jobs").items():
        entry = _mapping(entry, f"job {name!r}")
        _known(entry, JOB_FIELDS, f"job {name!r}")
        _known(
            _mapping(entry.get("destination"), f"job {name!r}: destination"),
            DESTINATION_FIELDS,
            f"job {name!r}: destination",
        )
        schedule = _mapping(entry.get("schedule"), f"job {name!r}: schedule")
        if isinstance(schedule.get("time"), int):  # YAML 1.1 reads 12:30 as 750 (base 60)
            raise CliError(f"job {name!r}: write schedule.time in quotes ('12:30'): YAML reads it as a number.")
        if not isinstance(entry.get("connection"), str):
            raise CliError(f"job {name!r}: connection must name a connection.")
        parsed.jobs[name] = entry
    return parsed


# --- The file's view of what the wizard has (export, and what apply compares against) ---------


def connection_spec(connection: JSON) -> JSON:
    if connection["type"] == "bigquery":
        return {"type": "bigquery", "project": connection.get("project") or ""}
    port = connection.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    return {
        "type": connection["type"],
        "host": connection.get("host") or "",
        "port": port or DEFAULT_PORTS[connection["type"]],
        "database": connection.get("database") or "",
        "user": connection.get("user") or "",
    }


def normal_schedule(schedule: JSON | None) -> JSON:
    """A schedule as the API stores it: defaults filled in, day names shortened, cron spaces single."""
    out = {**SCHEDULE_DEFAULTS, **(schedule or {})}
    day = str(out["day_of_week"] or "").lower()
    out.update(
        time=str(out["time"] or ""),
        day_of_week=DAY_NAMES.get(day, day),
        cron=" ".join(str(out["cron"] or "").split()),
        timezone=out["timezone"] or "UTC",
    )
    return out


def job_spec(job: JSON, connection_names: dict[str, str]) -> JSON:
    if job["connection_id"] not in connection_names:
        raise CliError(
            f"Job {job['name']!r} reads from connection {job['connection_id']}, which no longer "
            "exists: reconnect the job or delete it."
        )
    spec: JSON = {
        "connection": connection_names[job["connection_id"]],
        "schema_name": job["schema_name"],
        "table_name": job["table_name"],
        "selected_columns": job["selected_columns"],
        "load_type": job["load_type"],
    }
    if job["load_type"] == "transactional":
        spec["timestamp_column"] = job["timestamp_column"]
        start = job.get("historical_start_date")
        spec.update(
            {"historical_backfill": "custom", "historical_start_date": start}
            if start
            else {"historical_backfill": "all"}
        )
    spec["primary_key"] = job["primary_key"]
    spec["destination"] = {"dataset": job["destination"]["dataset"], "table": job["destination"]["table"]}
    schedule = normal_schedule(job["schedule"])
    spec["schedule"] = {"type": schedule["type"]} | {k: v for k, v in schedule.items() if v != SCHEDULE_DEFAULTS[k]}
    return spec


def _unique_names(items: list[JSON], kind: str) -> dict[str, JSON]:
    by_name: dict[str, JSON] = {}
    for item in items:
        if item["name"] in by_name:
            raise CliError(
                f"Two {kind}s are named {item['name']!r}: a job file matches them by name, so rename or delete one."
            )
        by_name[item["name"]] = item
    return by_name


def export_jobs(client: ApiClient) -> str:
    """The wizard's jobs, and the connections they read from, as a file `apply` takes unchanged."""
    connections = client.connections()
    names = {c["id"]: c["name"] for c in connections}
    jobs = _unique_names(client.jobs(), "job")
    used = {job["connection_id"] for job in jobs.values()}
    used_connections = {
        name: connection_spec(c)
        for name, c in _unique_names([c for c in connections if c["id"] in used], "connection").items()
    }
    specs = {name: job_spec(job, names) for name, job in jobs.items()}
    # A connection a field a line; a job's lists and small mappings on one line each, as people write them.
    return (
        HEADER
        + yaml.safe_dump(
            {"connections": used_connections}, sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        + yaml.safe_dump({"jobs": specs}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
    )
