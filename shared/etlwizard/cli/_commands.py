"""The commands: each one call (or a few) of the JSON API, printed for people or, with --json, as
the API's JSON for programs. Connections and jobs are named by id or by name."""

import json
import os
import time
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

import click

from ._api import DEFAULT_URL, JSON, ApiClient, CliError, Config, segment
from ._jobfile import Applier, export_jobs, read_job_file

F = TypeVar("F", bound=Callable[..., Any])
FINISHED = ("succeeded", "failed", "skipped")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        """Every API error ends the same way: its message and details on stderr, exit code 1."""
        try:
            return super().invoke(ctx)
        except CliError as e:
            for line in e.lines():
                click.echo(line, err=True)
            ctx.exit(1)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")(command)


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_table(header: list[str], rows: list[list[object]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [header, *([_text(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for line in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="ETL_WIZARD_URL", default=DEFAULT_URL, show_default=True, show_envvar=True,
              help="The wizard (bin/demo, or its Cloud Run URL) or the etl_api function's URL.")
@click.option("--token", envvar="ETL_WIZARD_TOKEN", show_envvar=True,
              help='A Google ID token for --url; default: fetched for it from Application Default Credentials '
                   '(or pass "$(gcloud auth print-identity-token)"). Not needed for localhost.')
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None) -> None:
    """ETL Wizard from the command line: the wizard's JSON API, for scripts and version control."""
    ctx.obj = ApiClient(Config(url=url, token=token or None))


# --- connections -----------------------------------------------------------------------------

@cli.group()
def connections() -> None:
    """Source databases: list, create, test, delete."""


def _where(connection: JSON) -> str:
    if connection["type"] == "bigquery":
        return f"project {connection['project']}"
    return f"{connection['host']}:{connection['port']}/{connection['database']}"


@connections.command("list")
@json_option
@click.pass_obj
def connections_list(client: ApiClient, as_json: bool) -> None:
    """List the connections."""
    found = client.connections()
    if as_json:
        _print_json(found)
        return
    _print_table(["NAME", "TYPE", "WHERE", "USER", "ID"],
                 [[c["name"], c["type"], _where(c), c["user"], c["id"]] for c in found], "No connections.")


@connections.command("create")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["postgresql", "mysql", "bigquery"]), required=True)
@click.option("--host")
@click.option("--port", type=int, help="Default: 5432 (postgresql), 3306 (mysql).")
@click.option("--database")
@click.option("--user")
@click.option("--project", help="The Google Cloud project (bigquery).")
@click.option("--password-env", metavar="VARIABLE",
              help="Read the password from this environment variable; otherwise it is asked for, hidden.")
@json_option
@click.pass_obj
def connections_create(client: ApiClient, name: str, kind: str, host: str | None, port: int | None,
                       database: str | None, user: str | None, project: str | None, password_env: str | None,
                       as_json: bool) -> None:
    """Create a connection; the password goes to the secret store and is never shown again."""
    body: JSON = {"name": name, "type": kind, "host": host, "port": port, "database": database, "user": user,
                  "project": project}
    if kind != "bigquery":
        body["password"] = _password(name, password_env)
    created = client.post("/api/connections/", {k: v for k, v in body.items() if v is not None})["connection"]
    if as_json:
        _print_json(created)
    else:
        click.echo(f"Created connection {created['name']} (id {created['id']}).")


def _password(name: str, variable: str | None) -> str:
    if variable is None:
        return ask_password(name)
    if variable not in os.environ:
        raise CliError(f"--password-env names {variable}, which is not set.")
    return os.environ[variable]


def ask_password(name: str) -> str:
    password: str = click.prompt(f"Password for connection {name} (empty for none)", hide_input=True,
                                 default="", show_default=False, err=True)
    return password


@connections.command("test")
@click.argument("connection")
@json_option
@click.pass_obj
def connections_test(client: ApiClient, connection: str, as_json: bool) -> None:
    """Connect and report the server's version."""
    found = client.find_connection(connection)
    result = client.post(f"/api/connections/{segment(found['id'])}/test/")
    if as_json:
        _print_json(result)
    else:
        click.echo(f"Connection {found['name']}: reached {result['server_version']}.")


@connections.command("delete")
@click.argument("connection")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.pass_obj
def connections_delete(client: ApiClient, connection: str, yes: bool) -> None:
    """Delete a connection and its password. Jobs reading from it stop working until reconnected."""
    found = client.find_connection(connection)
    if not yes:
        click.confirm(f"Delete connection {found['name']} (id {found['id']}) and its password?", abort=True)
    client.delete(f"/api/connections/{segment(found['id'])}/")
    click.echo(f"Deleted connection {found['name']}.")


# --- jobs ------------------------------------------------------------------------------------

@cli.group()
def jobs() -> None:
    """ETL jobs: list, show, run, pause, resume, delete; export to and apply from a YAML file."""


def _schedule(job: JSON) -> str:
    return f"{job['cron']} {job['schedule']['timezone']}" if job.get("cron") else "manual"


def _last_run(run: JSON | None) -> str:
    return f"{run['status']}, {run['rows']} rows" if run else ""


@jobs.command("list")
@json_option
@click.pass_obj
def jobs_list(client: ApiClient, as_json: bool) -> None:
    """List the jobs with their schedule and last run."""
    found = client.jobs()
    if as_json:
        _print_json(found)
        return
    _print_table(["NAME", "STATE", "LOAD", "SOURCE", "DESTINATION", "SCHEDULE", "LAST RUN", "ID"],
                 [[j["name"], j["state"], j["load_type"], f"{j['schema_name']}.{j['table_name']}",
                   f"{j['destination']['dataset']}.{j['destination']['table']}", _schedule(j),
                   _last_run(j.get("last_run")), j["id"]] for j in found], "No jobs.")


@jobs.command("show")
@click.argument("job")
@json_option
@click.pass_obj
def jobs_show(client: ApiClient, job: str, as_json: bool) -> None:
    """Show one job: source, columns, destination, schedule, next runs."""
    found = client.get(f"/api/etl/jobs/{segment(client.find_job(job)['id'])}/")["job"]
    if as_json:
        _print_json(found)
        return
    connection = next((c for c in client.connections() if c["id"] == found["connection_id"]), None)
    cursor = f" on {found['timestamp_column']}" if found.get("timestamp_column") else ""
    for label, value in [
        ("name", found["name"]), ("id", found["id"]), ("state", found["state"]),
        ("connection", f"{connection['name']} ({connection['id']})" if connection
                       else f"{found['connection_id']} (deleted)"), ("source", f"{found['schema_name']}.{found['table_name']}"),
        ("columns", ", ".join(found["selected_columns"])), ("load", found["load_type"] + cursor),
        ("primary key", ", ".join(found["primary_key"])),
        ("destination", f"{found['destination']['dataset']}.{found['destination']['table']}"),
        ("schedule", _schedule(found)), ("next runs", ", ".join(found.get("next_runs") or [])),
        ("watermark", found.get("watermark")), ("last run", _last_run(found.get("last_run"))),
    ]:
        click.echo(f"{label + ':':<13} {_text(value)}")


def _runs(client: ApiClient, job_id: str) -> list[JSON]:
    runs: list[JSON] = client.get(f"/api/etl/jobs/{segment(job_id)}/runs/")["runs"]
    return runs


def wait_for_run(client: ApiClient, job_id: str, before: dict[str, str], timeout: float) -> JSON:
    """The run a trigger started: a run id not seen before (or a failed split run the trigger
    resumed), once it has finished. The API answers a trigger with its message, not the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs(client, job_id)
        ours = [r for r in runs if r["id"] not in before] or \
               [r for r in runs if before.get(r["id"]) == "failed" and r["status"] != "failed"]
        if ours and ours[0]["status"] in FINISHED:
            return ours[0]
        time.sleep(0.5)
    raise CliError(f"The run did not finish within {timeout:.0f} s; follow it with: etl-wizard runs list {job_id}")


@jobs.command("run")
@click.argument("job")
@click.option("--wait", is_flag=True, help="Wait until the run finishes; print its status and rows.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
@json_option
@click.pass_obj
def jobs_run(client: ApiClient, job: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Run a job now."""
    job_id = client.find_job(job)["id"]
    before = {r["id"]: r["status"] for r in _runs(client, job_id)} if wait else {}
    queued = client.post(f"/api/etl/jobs/{segment(job_id)}/run/")
    if not wait:
        if as_json:
            _print_json(queued)
        else:
            click.echo(f"Run of job {job} queued (message {queued['message_id']}); see it with: "
                       f"etl-wizard runs list {job_id}")
        return
    click.echo(f"Run of job {job} queued; waiting for it to finish...", err=True)
    run = wait_for_run(client, job_id, before, timeout)
    if as_json:
        _print_json(run)
    elif run["status"] == "succeeded":
        click.echo(f"Run {run['id']} succeeded: {run['rows']} rows in {run.get('duration_seconds')} s.")
    if run["status"] != "succeeded":
        raise CliError(f"Run {run['id']} {run['status']}: {run.get('error')}")


def _job_action(action: str, done: str) -> click.Command:
    @click.argument("job")
    @json_option
    @click.pass_obj
    def command(client: ApiClient, job: str, as_json: bool) -> None:
        found = client.post(f"/api/etl/jobs/{segment(client.find_job(job)['id'])}/{action}/")["job"]
        if as_json:
            _print_json(found)
        else:
            click.echo(f"Job {found['name']} {done}; schedule: {_schedule(found)}.")

    return jobs.command(action, help=f"{action.capitalize()} a job's schedule.")(command)


jobs_pause = _job_action("pause", "paused")
jobs_resume = _job_action("resume", "resumed")


@jobs.command("delete")
@click.argument("job")
@click.option("--drop-table", is_flag=True, help="Drop the destination table too (default: it stays).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.pass_obj
def jobs_delete(client: ApiClient, job: str, drop_table: bool, yes: bool) -> None:
    """Delete a job, its schedule and its run history."""
    found = client.find_job(job)
    table = f"{found['destination']['dataset']}.{found['destination']['table']}"
    if not yes:
        click.confirm(f"Delete job {found['name']} (id {found['id']})"
                      f"{f' and drop {table}' if drop_table else f'; {table} stays'}?", abort=True)
    client.delete(f"/api/etl/jobs/{segment(found['id'])}/", {"drop_table": drop_table})
    click.echo(f"Deleted job {found['name']}{f' and dropped {table}' if drop_table else ''}.")


@jobs.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", lazy=True), default="-")
@click.pass_obj
def jobs_export(client: ApiClient, file: TextIO) -> None:
    """Write the jobs, and the connections they read from (no passwords), as YAML (default: stdout)."""
    file.write(export_jobs(client))


@jobs.command("apply")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
@click.pass_obj
def jobs_apply(client: ApiClient, file: TextIO, dry_run: bool) -> None:
    """Make the wizard match a YAML file: create what is missing, edit what can be edited in place.

    Connections and jobs are matched by name. A password is read from the variable a connection's
    password_env names, or asked for, and only when the connection is created."""
    applier = Applier(client, ask_password, dry_run=dry_run)
    applier.apply(read_job_file(file.read(), file.name))
    click.echo(f"{'Dry run' if dry_run else 'Applied'}: {applier.summary()}.")
    if applier.counts["not applied"]:
        raise CliError(f"{applier.counts['not applied']} item(s) in {file.name} could not be applied: see above.")


# --- runs, tables ----------------------------------------------------------------------------

@cli.group()
def runs() -> None:
    """A job's run history."""


@runs.command("list")
@click.argument("job")
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
@click.pass_obj
def runs_list(client: ApiClient, job: str, limit: int, as_json: bool) -> None:
    """A job's runs, newest first."""
    found = _runs(client, client.find_job(job)["id"])[:limit]
    if as_json:
        _print_json(found)
        return
    _print_table(["STARTED", "TRIGGER", "STATUS", "ROWS", "SECONDS", "ERROR", "ID"],
                 [[r["started_at"], r["trigger"], r["status"], r["rows"], r.get("duration_seconds"), r.get("error"),
                   r["id"]] for r in found], "No runs yet.")


@cli.group()
def tables() -> None:
    """Destination tables in BigQuery."""


@tables.command("list")
@click.argument("dataset")
@json_option
@click.pass_obj
def tables_list(client: ApiClient, dataset: str, as_json: bool) -> None:
    """The tables of a dataset, with row counts."""
    found = client.get(f"/api/etl/datasets/{segment(dataset)}/tables/")["tables"]
    if as_json:
        _print_json(found)
        return
    _print_table(["TABLE", "ROWS", "COLUMNS"], [[t["table_name"], t["row_count"], len(t["columns"])] for t in found],
                 f"No tables in {dataset}.")


@tables.command("show")
@click.argument("table", metavar="DATASET.TABLE")
@click.option("--rows", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Rows to show, in key order.")
@json_option
@click.pass_obj
def tables_show(client: ApiClient, table: str, rows: int, as_json: bool) -> None:
    """One table's row count and first rows."""
    dataset, dot, name = table.partition(".")
    if not dot:
        raise click.BadParameter("give it as DATASET.TABLE", param_hint="DATASET.TABLE")
    found = client.get(f"/api/etl/datasets/{segment(dataset)}/tables/{segment(name)}/", {"rows": str(rows)})["table"]
    if as_json:
        _print_json(found)
        return
    click.echo(f"{dataset}.{name}: {found['row_count']} rows")
    names = [c["name"] for c in found["columns"]]
    _print_table(names, [[row.get(n) for n in names] for row in found.get("rows", [])], "")


def main() -> None:
    cli.main(prog_name="etl-wizard")
