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

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import yaml

from ._api import JSON, ApiClient, CliError, segment

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
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
SCHEDULE_DEFAULTS: JSON = {
    "type": "manual",
    "time": "",
    "day_of_week": "",
    "day_of_month": None,
    "cron": "",
    "timezone": "UTC",
}
DAY_NAMES = {day: day[:3] for day in ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")}
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


# --- Apply -----------------------------------------------------------------------------------


def job_differences(wanted: JSON, spec: JSON) -> list[str]:
    """The fields the file states that differ from the job (fields left out keep what the API chose)."""
    changed = []
    for name in JOB_FIELDS:
        if name in CREATION_ONLY or (name not in wanted and name != "schedule"):
            continue
        if name == "timestamp_column" and spec["load_type"] != "transactional":
            continue  # a catalog job stores no cursor
        if name == "schedule":
            if normal_schedule(wanted.get("schedule")) != normal_schedule(spec["schedule"]):
                changed.append(name)
        elif name == "destination":
            stated = {k: v for k, v in (wanted["destination"] or {}).items() if k in ("dataset", "table")}
            if any(spec["destination"][k] != v for k, v in stated.items()):
                changed.append(name)
        elif wanted[name] != spec.get(name):
            changed.append(name)
    return changed


@dataclass
class Applier:
    client: ApiClient
    ask_password: Callable[[str], str]
    dry_run: bool = False
    counts: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0, "not applied": 0}
    )

    def _say(self, what: str, outcome: str, count: str) -> None:
        self.counts[count] += 1
        click.echo(f"{what}: {outcome}")

    def apply(self, wanted: JobFile) -> None:
        found = self.client.connections()
        twice = {c["name"] for c in found if sum(d["name"] == c["name"] for d in found) > 1}
        for name in twice & (set(wanted.connections) | {j["connection"] for j in wanted.jobs.values()}):
            raise CliError(
                f"Two connections are named {name!r}: a job file matches them by name, so rename or delete one."
            )
        connections = {c["name"]: c for c in found}
        # What can be known wrong before anything changes, is.
        for name, entry in wanted.jobs.items():
            if entry["connection"] not in connections and entry["connection"] not in wanted.connections:
                raise CliError(
                    f"job {name!r}: no connection is named {entry['connection']!r} in the file or the wizard."
                )
        for name, entry in wanted.connections.items():
            variable = entry.get("password_env")
            if name not in connections and variable is not None and os.environ.get(str(variable)) is None:
                raise CliError(f"connection {name!r}: password_env names {variable!r}, which is not set.")
        for name, entry in wanted.connections.items():
            self._apply_connection(name, entry, connections)
        names = {c["id"]: c["name"] for c in [*found, *connections.values()]}
        jobs = self.client.jobs()
        for name, entry in wanted.jobs.items():
            self._apply_job(name, entry, [j for j in jobs if j["name"] == name], connections, names)

    def _apply_connection(self, name: str, entry: JSON, existing: dict[str, JSON]) -> None:
        wanted = connection_spec({k: v for k, v in entry.items() if k != "password_env"})
        if name in existing:
            have = connection_spec(existing[name])
            changed = [k for k in wanted if wanted[k] != have.get(k)]
            if not changed:
                self._say(f"connection {name}", "no change", "unchanged")
            else:
                self._say(
                    f"connection {name}",
                    f"differs in {', '.join(changed)}, not applied: a connection "
                    "cannot be edited; create one under a new name and point the jobs at it (apply "
                    "reconnects them)",
                    "not applied",
                )
            return
        if self.dry_run:
            self._say(f"connection {name}", "would be created", "created")
            return
        body = {"name": name, **wanted}
        if wanted["type"] != "bigquery":
            body["password"] = self._password(name, entry.get("password_env"))
        existing[name] = self.client.post("/api/connections/", body)["connection"]
        self._say(f"connection {name}", f"created (id {existing[name]['id']})", "created")

    def _password(self, name: str, variable: object) -> str:
        if variable is None:
            return self.ask_password(name)
        if not isinstance(variable, str) or variable not in os.environ:
            raise CliError(f"connection {name!r}: password_env names {variable!r}, which is not set.")
        return os.environ[variable]

    def _apply_job(
        self, name: str, entry: JSON, same_name: list[JSON], connections: dict[str, JSON], names: dict[str, str]
    ) -> None:
        what = f"job {name}"
        if entry["connection"] not in connections:
            if self.dry_run:  # a dry run creates no connection to compare against
                self._say(
                    what,
                    f"would be {'applied' if same_name else 'created'} after connection {entry['connection']}",
                    "updated" if same_name else "created",
                )
                return
            raise CliError(f"{what}: connection {entry['connection']!r} was not created.")  # checked in apply
        if len(same_name) > 1:
            raise CliError(
                f"{what}: {len(same_name)} jobs have this name; apply matches jobs by name, so "
                "rename or delete all but one."
            )
        if not same_name:
            self._create_job(name, entry, connections[entry["connection"]]["id"])
            return
        job = same_name[0]
        spec = job_spec(job, names)
        changed = job_differences(entry, spec)
        fixed = [f for f in changed if f not in PATCHED + RECONNECTED]
        if fixed:
            shown = "; ".join(f"{f}: {spec.get(f)!r} -> {entry.get(f)!r}" for f in fixed)
            self._say(
                what,
                f"not applied: {shown} cannot be changed in place. Delete the job "
                f"(etl-wizard jobs delete {job['id']}) and apply again to create it anew",
                "not applied",
            )
            return
        if not changed:
            self._say(what, "no change", "unchanged")
            return
        if not self.dry_run:
            if any(f in RECONNECTED for f in changed):
                self.client.post(
                    f"/api/etl/jobs/{segment(job['id'])}/reconnect/",
                    {
                        "connection_id": connections[entry["connection"]]["id"],
                        "schema_name": entry.get("schema_name", spec["schema_name"]),
                        "table_name": entry.get("table_name", spec["table_name"]),
                    },
                )
            patch = {f: entry.get(f) for f in changed if f in PATCHED}
            if patch:
                self.client.patch(f"/api/etl/jobs/{segment(job['id'])}/", patch)
        self._say(what, f"{'would be updated' if self.dry_run else 'updated'} ({', '.join(changed)})", "updated")

    def _create_job(self, name: str, entry: JSON, connection_id: str) -> None:
        body: JSON = {
            "name": name,
            "connection_id": connection_id,
            **{k: v for k, v in entry.items() if k != "connection"},
        }
        destination = dict(body.get("destination") or {})
        if "mode" not in destination and destination.get("dataset") and destination.get("table"):
            # Load into the table if it is there already (another source's, or a job recreated).
            destination["mode"] = (
                "existing" if self._table_exists(destination["dataset"], destination["table"]) else "new"
            )
        body["destination"] = destination
        if self.dry_run:
            self._say(f"job {name}", "would be created", "created")
            return
        job = self.client.post("/api/etl/jobs/", body)["job"]
        self._say(
            f"job {name}",
            f"created (id {job['id']}, into {job['destination']['dataset']}.{job['destination']['table']})",
            "created",
        )

    def _table_exists(self, dataset: str, table: str) -> bool:
        try:
            self.client.get(f"/api/etl/datasets/{segment(dataset)}/tables/{segment(table)}/")
        except CliError as e:
            if e.status == 404:
                return False
            raise
        return True

    def summary(self) -> str:
        return ", ".join(f"{n} {label}" for label, n in self.counts.items())
