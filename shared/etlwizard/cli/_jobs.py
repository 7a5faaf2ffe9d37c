"""`etl-wizard jobs ...`: list, show, run (and wait), pause, resume, delete; export and apply."""

import time
from pathlib import Path
from typing import TextIO

import click

from ._api import JSON, ApiClient, CliError, segment
from ._apply import Applier
from ._jobfile import export_jobs, read_job_file
from ._terminal import ask_password, json_option, print_json, print_table, text

FINISHED = ("succeeded", "failed", "skipped")


@click.group()
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
        print_json(found)
        return
    print_table(
        ["NAME", "STATE", "LOAD", "SOURCE", "DESTINATION", "SCHEDULE", "LAST RUN", "ID"],
        [
            [
                j["name"],
                j["state"],
                j["load_type"],
                f"{j['schema_name']}.{j['table_name']}",
                f"{j['destination']['dataset']}.{j['destination']['table']}",
                _schedule(j),
                _last_run(j.get("last_run")),
                j["id"],
            ]
            for j in found
        ],
        "No jobs.",
    )


@jobs.command("show")
@click.argument("job")
@json_option
@click.pass_obj
def jobs_show(client: ApiClient, job: str, as_json: bool) -> None:
    """Show one job: source, columns, destination, schedule, next runs."""
    found = client.get(f"/api/etl/jobs/{segment(client.find_job(job)['id'])}/")["job"]
    if as_json:
        print_json(found)
        return
    connection = next((c for c in client.connections() if c["id"] == found["connection_id"]), None)
    cursor = f" on {found['timestamp_column']}" if found.get("timestamp_column") else ""
    source = f"{connection['name']} ({connection['id']})" if connection else f"{found['connection_id']} (deleted)"
    for label, value in [
        ("name", found["name"]),
        ("id", found["id"]),
        ("state", found["state"]),
        ("connection", source),
        ("source", f"{found['schema_name']}.{found['table_name']}"),
        ("columns", ", ".join(found["selected_columns"])),
        ("load", found["load_type"] + cursor),
        ("primary key", ", ".join(found["primary_key"])),
        ("destination", f"{found['destination']['dataset']}.{found['destination']['table']}"),
        ("schedule", _schedule(found)),
        ("next runs", ", ".join(found.get("next_runs") or [])),
        ("watermark", found.get("watermark")),
        ("last run", _last_run(found.get("last_run"))),
    ]:
        click.echo(f"{label + ':':<13} {text(value)}")


def _seen(run: JSON) -> tuple[str, str | None]:
    return run["status"], run.get("finished_at")


def wait_for_run(client: ApiClient, job_id: str, before: dict[str, tuple[str, str | None]], timeout: float) -> JSON:
    """The run a trigger started: a run id not seen before (or a failed split run the trigger
    resumed, which keeps its id), once it has finished. The API answers a trigger with its message,
    not with the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.runs(job_id)
        ours = [r for r in runs if r["id"] not in before] or [
            r for r in runs if before.get(r["id"], ("",))[0] == "failed" and _seen(r) != before[r["id"]]
        ]
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
    before = {r["id"]: _seen(r) for r in client.runs(job_id)} if wait else {}
    queued = client.post(f"/api/etl/jobs/{segment(job_id)}/run/")
    if not wait:
        if as_json:
            print_json(queued)
        else:
            click.echo(
                f"Run of job {job} queued (message {queued['message_id']}); see it with: etl-wizard runs list {job_id}"
            )
        return
    click.echo(f"Run of job {job} queued; waiting for it to finish...", err=True)
    run = wait_for_run(client, job_id, before, timeout)
    if as_json:
        print_json(run)
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
            print_json(found)
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
        click.confirm(
            f"Delete job {found['name']} (id {found['id']})"
            f"{f' and drop {table}' if drop_table else f'; {table} stays'}?",
            abort=True,
        )
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
    password_env names, or asked for, and only when the connection is created; so are certificates
    and keys, from the files a connection names (relative to FILE's folder)."""
    applier = Applier(client, ask_password, dry_run=dry_run)
    folder = Path.cwd() if file.name in ("-", "<stdin>") else Path(file.name).resolve().parent
    applier.apply(read_job_file(file.read(), file.name, folder))
    click.echo(f"{'Dry run' if dry_run else 'Applied'}: {applier.summary()}.")
    if applier.counts["not applied"]:
        raise CliError(f"{applier.counts['not applied']} item(s) in {file.name} could not be applied: see above.")
