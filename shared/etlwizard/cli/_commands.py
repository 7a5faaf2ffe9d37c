"""The commands: each one call (or a few) of the JSON API, printed for people or, with --json, as
the API's JSON for programs. Connections and jobs are named by id or by name."""

import os
from typing import Any

import click

from ._api import DEFAULT_URL, JSON, ApiClient, CliError, Config, segment
from ._jobs import jobs
from ._terminal import ask_password, json_option, print_json, print_table


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        """Every API error ends the same way: its message and details on stderr, exit code 1."""
        try:
            return super().invoke(ctx)
        except CliError as e:
            for line in e.lines():
                click.echo(line, err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="ETL_WIZARD_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    help="The wizard (bin/demo, or its Cloud Run URL) or the etl_api function's URL.",
)
@click.option(
    "--token",
    envvar="ETL_WIZARD_TOKEN",
    show_envvar=True,
    help="A Google ID token for --url; default: fetched for it from Application Default Credentials "
    '(or pass "$(gcloud auth print-identity-token)"). Not needed for localhost.',
)
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
        print_json(found)
        return
    print_table(
        ["NAME", "TYPE", "WHERE", "USER", "ID"],
        [[c["name"], c["type"], _where(c), c["user"], c["id"]] for c in found],
        "No connections.",
    )


@connections.command("create")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["postgresql", "mysql", "bigquery"]), required=True)
@click.option("--host")
@click.option("--port", type=int, help="Default: 5432 (postgresql), 3306 (mysql).")
@click.option("--database")
@click.option("--user")
@click.option("--project", help="The Google Cloud project (bigquery).")
@click.option(
    "--password-env",
    metavar="VARIABLE",
    help="Read the password from this environment variable; otherwise it is asked for, hidden.",
)
@json_option
@click.pass_obj
def connections_create(
    client: ApiClient,
    name: str,
    kind: str,
    host: str | None,
    port: int | None,
    database: str | None,
    user: str | None,
    project: str | None,
    password_env: str | None,
    as_json: bool,
) -> None:
    """Create a connection; the password goes to the secret store and is never shown again."""
    body: JSON = {
        "name": name,
        "type": kind,
        "host": host,
        "port": port,
        "database": database,
        "user": user,
        "project": project,
    }
    if kind != "bigquery":
        body["password"] = _password(name, password_env)
    created = client.post("/api/connections/", {k: v for k, v in body.items() if v is not None})["connection"]
    if as_json:
        print_json(created)
    else:
        click.echo(f"Created connection {created['name']} (id {created['id']}).")


def _password(name: str, variable: str | None) -> str:
    if variable is None:
        return ask_password(name)
    if variable not in os.environ:
        raise CliError(f"--password-env names {variable}, which is not set.")
    return os.environ[variable]


@connections.command("test")
@click.argument("connection")
@json_option
@click.pass_obj
def connections_test(client: ApiClient, connection: str, as_json: bool) -> None:
    """Connect and report the server's version."""
    found = client.find_connection(connection)
    result = client.post(f"/api/connections/{segment(found['id'])}/test/")
    if as_json:
        print_json(result)
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


cli.add_command(jobs)


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
    found = client.runs(client.find_job(job)["id"])[:limit]
    if as_json:
        print_json(found)
        return
    print_table(
        ["STARTED", "TRIGGER", "STATUS", "ROWS", "SECONDS", "ERROR", "ID"],
        [
            [r["started_at"], r["trigger"], r["status"], r["rows"], r.get("duration_seconds"), r.get("error"), r["id"]]
            for r in found
        ],
        "No runs yet.",
    )


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
        print_json(found)
        return
    print_table(
        ["TABLE", "ROWS", "COLUMNS"],
        [[t["table_name"], t["row_count"], len(t["columns"])] for t in found],
        f"No tables in {dataset}.",
    )


@tables.command("show")
@click.argument("table", metavar="DATASET.TABLE")
@click.option("--rows", type=click.IntRange(0, 1000), default=10, show_default=True, help="Rows to show, in key order.")
@json_option
@click.pass_obj
def tables_show(client: ApiClient, table: str, rows: int, as_json: bool) -> None:
    """One table's row count and first rows."""
    dataset, dot, name = table.partition(".")
    if not dot:
        raise click.BadParameter("give it as DATASET.TABLE", param_hint="DATASET.TABLE")
    found = client.get(f"/api/etl/datasets/{segment(dataset)}/tables/{segment(name)}/", {"rows": str(rows)})["table"]
    if as_json:
        print_json(found)
        return
    click.echo(f"{dataset}.{name}: {found['row_count']} rows")
    names = [c["name"] for c in found["columns"]]
    if rows:
        print_table(names, [[row.get(n) for n in names] for row in found.get("rows", [])], "No rows.")


def main() -> None:
    cli.main(prog_name="etl-wizard")
