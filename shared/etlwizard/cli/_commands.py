"""The commands: each one call (or a few) of the JSON API, printed for people or, with --json, as
the API's JSON for programs. Connections and jobs are named by id or by name."""

import os
import shlex
from pathlib import Path
from typing import Any

import click

from ..reach.options import MODE_NAMES
from ._api import DEFAULT_URL, JSON, ApiClient, CliError, Config, segment
from ._jobs import jobs
from ._reach import check_options, check_sources, cli_name, needs_password, security_body
from ._terminal import ask_passphrase, ask_password, json_option, print_json, print_steps, print_table


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
    """Source databases: list, create, test, trust a bastion's host key, delete."""


def _where(connection: JSON) -> str:
    if connection["type"] == "bigquery":
        return f"project {connection['project']}"
    cloudsql = connection.get("cloudsql")
    if cloudsql:
        return f"{cloudsql['instance']}/{connection['database']}"
    return f"{connection['host']}:{connection['port']}/{connection['database']}"


@connections.command("list")
@json_option
@click.pass_obj
def connections_list(client: ApiClient, as_json: bool) -> None:
    """List the connections, with how each is secured and reached (SECURITY)."""
    found = client.connections()
    if as_json:
        print_json(found)
        return
    print_table(
        ["NAME", "TYPE", "WHERE", "USER", "SECURITY", "ID"],
        [[c["name"], c["type"], _where(c), c.get("user"), c.get("security"), c["id"]] for c in found],
        "No connections.",
    )


TLS_MODES = sorted({mode for names in MODE_NAMES.values() for mode in names})


@connections.command("create")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["postgresql", "mysql", "bigquery"]), required=True)
@click.option("--host", help="The database's host (as the bastion sees it, with --via ssh).")
@click.option("--port", type=int, help="Default: 5432 (postgresql), 3306 (mysql).")
@click.option("--database")
@click.option("--user")
@click.option("--project", help="The Google Cloud project (bigquery).")
@click.option(
    "--password-env",
    metavar="VARIABLE",
    help="Read the password from this environment variable; otherwise it is asked for, hidden "
    "(not with --cloudsql-iam).",
)
@click.option(
    "--tls-mode",
    type=click.Choice(TLS_MODES),
    metavar="MODE",
    help="postgresql: disable|prefer|require|verify-ca|verify-full; mysql: disabled|preferred|required|"
    "verify-ca|verify-identity. Default: verify-full with --tls-ca; disable(d) to a loopback address; "
    "else require(d).",
)
@click.option("--tls-ca", "tls_ca_file", metavar="FILE", help="The CA certificate(s) the server's must chain to (PEM).")
@click.option("--tls-client-cert", "tls_client_cert_file", metavar="FILE", help="A client certificate (PEM).")
@click.option("--tls-client-key", "tls_client_key_file", metavar="FILE", help="Its key (PEM, unencrypted).")
@click.option(
    "--via",
    type=click.Choice(["direct", "ssh", "cloudsql"]),
    help="How the database is reached. Default: ssh with --ssh-* options, cloudsql with --cloudsql-*, else direct.",
)
@click.option("--ssh-host", help="The SSH bastion.")
@click.option("--ssh-port", type=click.IntRange(1, 65535), help="Default: 22.")
@click.option("--ssh-user", help="Who logs in to the bastion.")
@click.option("--ssh-key", "ssh_key_file", metavar="FILE", help="The private key that logs in (OpenSSH or PEM).")
@click.option(
    "--ssh-passphrase-env",
    metavar="VARIABLE",
    help="Read the SSH key's passphrase from this environment variable; otherwise it is asked for, "
    "hidden, if the key is encrypted.",
)
@click.option(
    "--ssh-host-key",
    metavar="FINGERPRINT",
    help="The bastion's host key, SHA256:... as ssh-keygen -lf prints it. Without it, `connections "
    "test` shows the key the bastion presents and `connections trust-host-key` pins it.",
)
@click.option(
    "--cloudsql-instance", metavar="PROJECT:REGION:INSTANCE", help="A Cloud SQL instance, in place of --host."
)
@click.option("--cloudsql-ip-type", type=click.Choice(["public", "private", "psc"]), help="Default: public.")
@click.option(
    "--cloudsql-iam", is_flag=True, default=None, help="IAM database login: the service account logs in, no password."
)
@json_option
@click.pass_obj
def connections_create(
    client: ApiClient, /, name: str, kind: str, password_env: str | None, as_json: bool, **options: Any
) -> None:
    """Create a connection. Its secrets (password, client key, SSH key and passphrase) go to the
    secret store and are never shown again; certificates and keys are read from the files given."""
    base = {key: options.pop(key) for key in ("host", "port", "database", "user", "project")}
    fields = {**base, **options, "password_env": password_env}
    via = check_options(kind, fields, "", cli_name)
    check_sources(fields, via, Path.cwd(), "", cli_name)
    if needs_password(kind, fields) and password_env is not None and password_env not in os.environ:
        raise CliError(f"--password-env names {password_env}, which is not set.")  # before anything is asked
    body: JSON = {"name": name, "type": kind, **{k: v for k, v in base.items() if v is not None}}
    body.update(security_body(kind, via, fields, Path.cwd(), "", cli_name, lambda: ask_passphrase(name)))
    if needs_password(kind, fields):
        body["password"] = _password(name, password_env)
    created = client.post("/api/connections/", body)["connection"]
    if as_json:
        print_json(created)
    else:
        click.echo(f"Created connection {created['name']} (id {created['id']}, {created.get('security')}).")


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
    """Connect step by step (name resolution, TCP, SSH bastion, TLS, login, catalog permission) and
    print each step's result: ✓ ok, ✗ failed, \u2013 skipped, ! warning, ? to confirm (the bastion's host
    key), with what to fix under a step that failed. Exits with 1 unless the connection works."""
    found = client.find_connection(connection)
    try:
        result = client.post(f"/api/connections/{segment(found['id'])}/test/")
    except CliError as e:
        steps = [d for d in e.details if isinstance(d, dict) and "step" in d and "status" in d]
        if not steps:
            raise
        if as_json:
            print_json({"status": "error", "message": e.message, "details": e.details})
        else:
            print_steps(steps)
        raise CliError(_test_failure(found, steps, e.message, as_json), status=e.status) from None
    if as_json:
        print_json(result)
        return
    print_steps(result.get("steps") or [])
    click.echo(f"Connection {found['name']}: reached {result['server_version']}.")


def _test_failure(connection: JSON, steps: list[JSON], message: str, as_json: bool) -> str:
    """What stderr says after the checklist; a bastion's host key to confirm comes with how."""
    confirm = next((s for s in steps if s["status"] == "confirm" and s.get("fingerprint")), None)
    if confirm is not None:
        command = f"etl-wizard connections trust-host-key {shlex.quote(connection['name'])} {confirm['fingerprint']}"
        if as_json:
            return f"connection {connection['name']}: the bastion's host key is not confirmed yet; trust it: {command}"
        click.echo(f"The bastion presents host key {confirm['fingerprint']}. If it is the bastion's, trust it:")
        click.echo(f"  {command}")
        return f"connection {connection['name']}: the bastion's host key is not confirmed yet."
    failed = next((s for s in steps if s["status"] == "failed"), None)
    if failed is None or as_json:
        return message
    return f"connection {connection['name']}: {failed.get('title') or failed['step']} failed."


@connections.command("trust-host-key")
@click.argument("connection")
@click.argument("fingerprint")
@json_option
@click.pass_obj
def connections_trust_host_key(client: ApiClient, connection: str, fingerprint: str, as_json: bool) -> None:
    """Pin an SSH bastion's host key (SHA256:..., as `connections test` shows it): connections
    through the bastion go only to a host that presents it. Refused if the bastion presents another."""
    found = client.find_connection(connection)
    trusted = client.post(f"/api/connections/{segment(found['id'])}/host-key/", {"fingerprint": fingerprint})[
        "connection"
    ]
    if as_json:
        print_json(trusted)
    else:
        click.echo(f"Connection {trusted['name']} trusts the bastion's host key {fingerprint} ({trusted['security']}).")


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
