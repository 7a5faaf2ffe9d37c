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
        tls_mode: verify-full      # optional; mysql: disabled | preferred | required | verify-ca | verify-identity
        tls_ca_file: certs/ca.pem  # certificates and keys as paths, relative to this file's folder
        via: ssh                   # direct (default) | ssh | cloudsql; implied by ssh_... or cloudsql_... fields
        ssh_host: bastion.example.com
        ssh_user: etl
        ssh_key_file: ~/.ssh/etl_bastion  # ssh_passphrase_env: VARIABLE, else asked for if encrypted
        ssh_host_key: SHA256:...   # optional: else `connections test` shows it, `trust-host-key` pins it
      warehouse:
        type: postgresql
        cloudsql_instance: my-project:europe-west1:shop   # in place of host and port
        cloudsql_ip_type: private  # public (default) | private | psc
        cloudsql_iam: true         # the service account logs in: no password
        database: shop
        user: etl-runner@my-project.iam
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
Secrets (the password, certificates and keys, the SSH passphrase) are read only when apply creates
the connection, and never read back or compared. A connection that exists is compared by its other
fields (tls_mode and ssh_host_key only where the file states them; a CA or client certificate the
file names must be there) and left as it is, but for ssh_host_key, which apply pins as
`connections trust-host-key` does (if the bastion presents that key).
"""

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..model import DEFAULT_PORTS
from ..scheduling import DAY_NAMES, Schedule
from ._api import JSON, ApiClient, CliError
from ._reach import INSTEAD, SECRET_SOURCES, SETTINGS, check_options, file_name

CONNECTION_FIELDS = ("type", "host", "port", "database", "user", "project", *SETTINGS)
CONNECTION_SECRETS = ("password_env", *SECRET_SOURCES)  # where the secrets are: never compared or exported
LEFT_TO_THE_WIZARD = ("tls_mode", "ssh_host_key")  # a file may leave them out: the wizard chooses, or asks
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
    "# Nor certificates or keys: where apply creates a connection, it reads them from tls_ca_file,\n"
    "# tls_client_cert_file, tls_client_key_file and ssh_key_file (paths, relative to this file's\n"
    "# folder), and an SSH key's passphrase from the variable ssh_passphrase_env names.\n"
)


@dataclass
class JobFile:
    connections: dict[str, JSON] = field(default_factory=dict)
    jobs: dict[str, JSON] = field(default_factory=dict)
    folder: Path = field(default_factory=Path.cwd)  # where the paths in the file start


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
        named = ", ".join(
            name + "".join(f" (did you mean {close}?)" for close in difflib.get_close_matches(name, allowed, 1))
            for name in unknown
        )
        raise CliError(f"{where}: unknown field(s) {named}; known: {', '.join(allowed)}.")


def _connection_entry(name: str, entry: dict[str, Any]) -> None:
    where = f"connection {name!r}"
    for secret, instead in INSTEAD.items():
        if secret in entry:
            raise CliError(f"{where}: no {secret} in a job file (it lives in version control): give {instead}.")
    _known(entry, CONNECTION_FIELDS + CONNECTION_SECRETS, where)
    if entry.get("type") not in ("postgresql", "mysql", "bigquery"):
        raise CliError(f"{where}: type must be postgresql, mysql or bigquery.")
    check_options(entry["type"], entry, f"{where}: ", file_name)


def read_job_file(text: str, source: str, folder: Path | None = None) -> JobFile:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CliError(f"{source} is not valid YAML: {e}") from None
    document = _mapping(document, source)
    _known(document, ("connections", "jobs"), source)
    parsed = JobFile(folder=folder or Path.cwd())
    for name, entry in _mapping(document.get("connections"), "connections").items():
        entry = _mapping(entry, f"connection {name!r}")
        _connection_entry(name, entry)
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
    """A connection as the API shows it, in the file's terms: what export writes, apply compares."""
    kind = connection["type"]
    if kind == "bigquery":
        return normal_connection(kind, "direct", connection)
    via = connection.get("via") or "direct"
    flat = {k: connection.get(k) for k in ("host", "port", "database", "user")}
    flat["tls_mode"] = (connection.get("tls") or {}).get("mode")
    ssh, cloudsql = connection.get("ssh") or {}, connection.get("cloudsql") or {}
    flat.update({f"ssh_{k}": ssh.get(k) for k in ("host", "port", "user", "host_key")})
    flat.update({f"cloudsql_{k}": cloudsql.get(k) for k in ("instance", "ip_type", "iam")})
    return normal_connection(kind, via, flat)


def file_connection(name: str, entry: JSON) -> JSON:
    """A file's connection entry without its secrets' sources, as connection_spec has it."""
    via = check_options(entry["type"], entry, f"connection {name!r}: ", file_name)
    return normal_connection(entry["type"], via, entry)


def normal_connection(kind: str, via: str, fields: JSON) -> JSON:
    """The non-secret fields, the wizard's defaults filled in, in the file's order; a Cloud SQL
    instance in place of host and port (and of TLS: the connector encrypts); the TLS mode and the
    bastion's host key where known."""
    if kind == "bigquery":
        return {"type": "bigquery", "project": fields.get("project") or ""}
    spec: JSON = {"type": kind}
    if via != "cloudsql":
        port = fields.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        spec.update(host=fields.get("host") or "", port=port or DEFAULT_PORTS[kind])
    spec.update(database=fields.get("database") or "", user=fields.get("user") or "")
    if via != "cloudsql" and fields.get("tls_mode"):
        spec["tls_mode"] = fields["tls_mode"]
    if via != "direct":
        spec["via"] = via
    if via == "ssh":
        spec.update(
            ssh_host=fields.get("ssh_host") or "",
            ssh_port=fields.get("ssh_port") or 22,
            ssh_user=fields.get("ssh_user") or "",
        )
        if fields.get("ssh_host_key"):
            spec["ssh_host_key"] = fields["ssh_host_key"]
    if via == "cloudsql":
        spec.update(
            cloudsql_instance=fields.get("cloudsql_instance") or "",
            cloudsql_ip_type=fields.get("cloudsql_ip_type") or "public",
            cloudsql_iam=bool(fields.get("cloudsql_iam")),
        )
    return spec


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
