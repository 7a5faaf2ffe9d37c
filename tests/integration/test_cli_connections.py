"""The etl-wizard CLI's connection security and network options (issue 14), end to end: `connections
create` with TLS, an SSH bastion or a Cloud SQL instance, `list` with its SECURITY, `test` as a
checklist, `trust-host-key`, and the same options in a job file through `jobs apply` and `export`;
against the wizard over HTTP on the embedded stack, the local PostgreSQL, the tests' TLS PostgreSQL
and the tests' SSH bastion. No secret (password, key, passphrase) ever shows in an output."""

import json
import subprocess
import uuid

import pytest
import yaml

from etlwizard.cli._reach import key_is_encrypted
from tests.integration import test_cli
from tests.integration.ssh_bastion import make_key

PASSWORD = test_cli.PASSWORD
PASSPHRASE = "cli passphrase 14 never shown"
SKIPPED = "\u2013"  # the en dash `connections test` marks a skipped step with
TITLES = [
    "Name resolution",
    "TCP connection",
    "SSH bastion",
    "Cloud SQL connector",
    "TLS",
    "Login",
    "Catalog permission",
]
server = test_cli.server  # the same fixtures: the wizard on a port of its own, and `etl ARGS`
etl = test_cli.etl


def private(path, text):
    """A key or certificate file as a user keeps it: readable by them only."""
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def secret_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def never_shown(result, *secrets: str) -> None:
    shown = result.stdout + result.stderr
    assert not any(line in shown for secret in secrets for line in secret_lines(secret))


def checklist(result) -> list[tuple[str, str]]:
    """(mark, title) of each step line of `connections test`'s output."""
    found = []
    for line in result.stdout.splitlines():
        mark, _, rest = line.partition(" ")
        for title in TITLES:
            if rest.startswith(title + " ") or rest == title:
                found.append((mark, title))
                break
    return found


def create(etl, name, db, *options, input=PASSWORD + "\n"):
    return etl(
        "connections",
        "create",
        name,
        "--type",
        "postgresql",
        "--host",
        db["host"],
        "--port",
        str(db["port"]),
        "--database",
        db["database"],
        "--user",
        db["user"],
        *options,
        input=input,
    )


def listed(etl) -> dict[str, dict[str, str]]:
    """`connections list` as {name: {column: value}}, the columns cut where the header's start."""
    lines = etl("connections", "list").stdout.splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


# --- TLS ---------------------------------------------------------------------------------------


def test_a_plaintext_connection_says_so_and_tests_step_by_step(etl, postgres_db):
    created = create(etl, "local pg", postgres_db, "--tls-mode", "disable")
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("Created connection local pg (id ") and created.stdout.endswith(", disable).\n")
    row = listed(etl)["local pg"]
    assert row["SECURITY"] == "disable"
    assert row["WHERE"] == f"127.0.0.1:5432/{postgres_db['database']}"

    tested = etl("connections", "test", "local pg")
    assert tested.exit_code == 0, tested.output
    assert checklist(tested) == [
        ("✓", "Name resolution"),
        ("✓", "TCP connection"),
        (SKIPPED, "TLS"),  # disable: nothing to check, and the line says what that means
        ("✓", "Login"),
        ("✓", "Catalog permission"),
    ]
    lines = tested.stdout.splitlines()
    assert lines[0].split() == ["✓", "Name", "resolution", "127.0.0.1", "is", "127.0.0.1"]
    assert "disable: plaintext; anyone on the network path can read the data" in lines[2]
    assert lines[-1].startswith("Connection local pg: reached PostgreSQL")
    as_json = json.loads(etl("connections", "test", "local pg", "--json").stdout)
    assert [s["status"] for s in as_json["steps"]] == ["ok", "ok", "skipped", "ok", "ok"]


def test_verify_full_with_a_client_certificate_passes_every_step(etl, tls_postgres, tls_certificates, tmp_path):
    certificates = tls_certificates
    created = etl(
        "connections",
        "create",
        "tls pg",
        "--type",
        "postgresql",
        "--host",
        tls_postgres.host,
        "--port",
        str(tls_postgres.port),
        "--database",
        tls_postgres.database,
        "--user",
        tls_postgres.cert_role,
        "--tls-mode",
        "verify-full",
        "--tls-ca",
        private(tmp_path / "ca.pem", certificates.ca.cert_pem),
        "--tls-client-cert",
        private(tmp_path / "client.pem", certificates.client.cert_pem),
        "--tls-client-key",
        private(tmp_path / "client.key", certificates.client.key_pem),
        input="\n",  # cert login: no password
    )
    assert created.exit_code == 0, created.output
    never_shown(created, certificates.client.key_pem)
    assert listed(etl)["tls pg"]["SECURITY"] == "verify-full + client certificate"

    tested = etl("connections", "test", "tls pg")
    assert tested.exit_code == 0, tested.output
    assert checklist(tested) == [
        ("✓", "Name resolution"),
        ("✓", "TCP connection"),
        ("✓", "TLS"),
        ("✓", "Login"),
        ("✓", "Catalog permission"),
    ]
    assert "verify-full: TLS" in tested.stdout
    never_shown(tested, certificates.client.key_pem)


def test_a_wrong_ca_fails_at_tls_with_its_fix(etl, tls_postgres, tls_certificates, tmp_path):
    created = etl(
        "connections",
        "create",
        "wrong ca",
        "--type",
        "postgresql",
        "--host",
        tls_postgres.host,
        "--port",
        str(tls_postgres.port),
        "--database",
        tls_postgres.database,
        "--user",
        tls_postgres.trust_role,
        "--tls-ca",
        private(tmp_path / "other_ca.pem", tls_certificates.other_ca.cert_pem),
        input="\n",
    )
    assert created.exit_code == 0, created.output
    assert listed(etl)["wrong ca"]["SECURITY"] == "verify-full"  # the default with a CA

    tested = etl("connections", "test", "wrong ca")
    assert tested.exit_code == 1
    assert checklist(tested) == [
        ("✓", "Name resolution"),
        ("✓", "TCP connection"),
        ("✗", "TLS"),
        (SKIPPED, "Login"),
        (SKIPPED, "Catalog permission"),
    ]
    lines = tested.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("✗"))
    assert "unknown ca" in lines[failed].lower()
    assert lines[failed + 1].strip() == "Fix: Upload the CA certificate that signed the server's certificate."
    detail = lines[failed].split(None, 2)[2]
    assert lines[failed + 1].index("Fix:") == lines[failed].index(detail)  # under the detail
    assert tested.stderr == "Error: connection wrong ca: TLS failed.\n"


def test_a_closed_port_fails_at_tcp_with_its_fix(etl):
    closed = {"host": "127.0.0.1", "port": 1, "database": "shop", "user": "etl"}
    assert create(etl, "closed", closed, "--tls-mode", "require").exit_code == 0
    assert listed(etl)["closed"]["SECURITY"] == "require"
    tested = etl("connections", "test", "closed")
    assert tested.exit_code == 1
    assert checklist(tested) == [
        ("✓", "Name resolution"),
        ("✗", "TCP connection"),
        (SKIPPED, "TLS"),
        (SKIPPED, "Login"),
        (SKIPPED, "Catalog permission"),
    ]
    lines = tested.stdout.splitlines()
    assert lines[1].split(None, 3)[3] == "connection 'closed': cannot reach 127.0.0.1:1 (Connection refused)"
    assert lines[2].strip() == (
        "Fix: Nothing listens there: check the port, and that the server listens on this address."
    )
    assert tested.stderr == "Error: connection closed: TCP connection failed.\n"

    as_json = etl("connections", "test", "closed", "--json")
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["status"] == "error" and [s["status"] for s in body["details"]][:2] == ["ok", "failed"]
    assert as_json.stderr == f"Error: {body['message']}\n"


def test_bad_options_are_refused_before_anything_is_sent(etl, tmp_path, client):
    db = {"host": "127.0.0.1", "port": 5432, "database": "shop", "user": "etl"}
    key = str(make_key(tmp_path / "key").path)
    refused = {
        ("--tls-mode", "verify-identity"): (
            "--tls-mode must be one of disable, prefer, require, verify-ca, verify-full for postgresql."
        ),
        (
            "--tls-client-cert",
            key,
        ): "--tls-client-cert and --tls-client-key go together: a client certificate needs its key.",
        ("--ssh-host", "bastion"): "--ssh-user is required with --via ssh.",
        ("--via", "ssh", "--ssh-host", "b", "--ssh-user", "u"): "--ssh-key is required with --via ssh.",
        ("--via", "cloudsql", "--ssh-key", key): "--ssh-key is used only with --via ssh, not cloudsql.",
        ("--ssh-host", "b", "--cloudsql-iam"): (
            "--ssh-host and --cloudsql-iam: a connection goes through an SSH bastion or to a Cloud SQL instance, "
            "not both."
        ),
        ("--ssh-host", "b", "--ssh-user", "u", "--ssh-key", str(tmp_path / "nowhere")): (
            f"--ssh-key names {tmp_path / 'nowhere'}, which is not a file this user may read."
        ),
        ("--password-env", "NO_PASSWORD_HERE"): "--password-env names NO_PASSWORD_HERE, which is not set.",
    }
    for options, message in refused.items():
        result = create(etl, "refused", db, *options)
        assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n"), options
    der = tmp_path / "ca.der"
    der.write_bytes(b"\x30\x82\x01\xff\x80")
    result = create(etl, "refused", db, "--tls-ca", str(der))
    assert result.stderr == (
        f"Error: --tls-ca: {der} is not PEM text (a DER file? openssl x509 -inform der -in FILE -out "
        "FILE.pem converts a certificate).\n"
    )
    cloudsql = etl(
        "connections",
        "create",
        "refused",
        "--type",
        "mysql",
        "--cloudsql-instance",
        "my-project:europe-west1:shop",
        "--host",
        "db",
        "--database",
        "shop",
        "--user",
        "etl",
    )
    assert cloudsql.stderr == (
        "Error: --host is not used with --via cloudsql: Google's connector finds the instance and "
        "encrypts the connection.\n"
    )
    assert client.get("/api/connections/").get_json()["connections"] == []


def test_a_cloud_sql_connection_with_iam_login_asks_no_password(etl):
    created = etl(
        "connections",
        "create",
        "cloud",
        "--type",
        "postgresql",
        "--cloudsql-instance",
        "my-project:europe-west1:shop",
        "--cloudsql-ip-type",
        "private",
        "--cloudsql-iam",
        "--database",
        "shop",
        "--user",
        "etl-runner@my-project.iam",
    )
    assert created.exit_code == 0, created.output
    assert created.stderr == ""  # nothing asked
    row = listed(etl)["cloud"]
    assert row["WHERE"] == "my-project:europe-west1:shop/shop"
    assert row["SECURITY"] == "Cloud SQL, private IP, IAM login"
    [shown] = json.loads(etl("connections", "list", "--json").stdout)
    assert shown["via"] == "cloudsql" and shown["cloudsql"] == {
        "instance": "my-project:europe-west1:shop",
        "ip_type": "private",
        "iam": True,
    }


def test_a_cloud_sql_connection_in_a_job_file(etl, tmp_path, client):
    connection = {
        "type": "mysql",
        "cloudsql_instance": "my-project:europe-west1:shop",
        "cloudsql_iam": True,
        "database": "shop",
        "user": "etl-runner",
    }
    jobs_yaml = tmp_path / "jobs.yaml"
    jobs_yaml.write_text(yaml.safe_dump({"connections": {"cloud": connection}}))
    created = etl("jobs", "apply", str(jobs_yaml))
    assert created.exit_code == 0, created.output
    assert created.stderr == ""  # IAM login: no password asked
    assert created.stdout.splitlines()[0].endswith(", Cloud SQL, public IP, IAM login)")
    [shown] = client.get("/api/connections/").get_json()["connections"]
    assert (shown["via"], shown["cloudsql"]["ip_type"], shown["tls"]["mode"]) == ("cloudsql", "public", "disabled")
    assert etl("jobs", "apply", str(jobs_yaml)).stdout.splitlines()[0] == "connection cloud: no change"
    jobs_yaml.write_text(yaml.safe_dump({"connections": {"cloud": connection | {"cloudsql_ip_type": "private"}}}))
    assert (
        etl("jobs", "apply", str(jobs_yaml))
        .stdout.splitlines()[0]
        .startswith("connection cloud: differs in cloudsql_ip_type, not applied")
    )
    jobs_yaml.write_text(yaml.safe_dump({"connections": {"cloud": connection | {"password_env": "DB_PASSWORD"}}}))
    assert etl("jobs", "apply", str(jobs_yaml)).stderr == (
        "Error: connection 'cloud': password_env is not used with cloudsql_iam: the service account logs in, "
        "without a password.\n"
    )


# --- An SSH bastion ------------------------------------------------------------------------------


def test_a_bastion_host_key_is_confirmed_then_trusted(etl, ssh_bastion, postgres_db, tmp_path, client):
    key_file = private(tmp_path / "bastion_key", ssh_bastion.key.private_key)
    created = create(
        etl,
        "behind bastion",
        postgres_db,  # 127.0.0.1:5432 as the bastion sees it
        "--ssh-host",
        ssh_bastion.host,
        "--ssh-port",
        str(ssh_bastion.port),
        "--ssh-user",
        ssh_bastion.user,
        "--ssh-key",
        key_file,
    )
    assert created.exit_code == 0, created.output
    never_shown(created, ssh_bastion.key.private_key)
    assert listed(etl)["behind bastion"]["SECURITY"] == "disable, via bastion (host key not confirmed)"

    first = etl("connections", "test", "behind bastion")
    assert first.exit_code == 1
    assert checklist(first) == [
        ("✓", "Name resolution"),
        ("✓", "TCP connection"),
        ("?", "SSH bastion"),
        (SKIPPED, "TLS"),
        (SKIPPED, "Login"),
        (SKIPPED, "Catalog permission"),
    ]
    fingerprint = ssh_bastion.host_key_fingerprint
    assert first.stdout.splitlines()[-2:] == [
        f"The bastion presents host key {fingerprint}. If it is the bastion's, trust it:",
        f"  etl-wizard connections trust-host-key 'behind bastion' {fingerprint}",
    ]
    assert first.stderr == "Error: connection behind bastion: the bastion's host key is not confirmed yet.\n"

    other = "SHA256:" + "A" * 43
    wrong = etl("connections", "trust-host-key", "behind bastion", other)
    assert wrong.exit_code == 1
    assert wrong.stderr == f"Error: the bastion now presents {fingerprint}, not {other}: test the connection again\n"

    trusted = etl("connections", "trust-host-key", "behind bastion", fingerprint)
    assert trusted.exit_code == 0, trusted.output
    assert trusted.stdout == (
        f"Connection behind bastion trusts the bastion's host key {fingerprint} (disable, via bastion).\n"
    )
    assert listed(etl)["behind bastion"]["SECURITY"] == "disable, via bastion"

    again = etl("connections", "test", "behind bastion")
    assert again.exit_code == 0, again.output
    assert checklist(again) == [
        ("✓", "Name resolution"),
        ("✓", "TCP connection"),
        ("✓", "SSH bastion"),
        (SKIPPED, "TLS"),  # disable to 127.0.0.1, which the bastion reaches on its own machine
        ("✓", "Login"),
        ("✓", "Catalog permission"),
    ]
    assert f"host key {fingerprint}" in again.stdout
    never_shown(again, ssh_bastion.key.private_key)
    [shown] = client.get("/api/connections/").get_json()["connections"]
    assert shown["ssh"]["host_key"] == fingerprint


@pytest.fixture(scope="module")
def passphrase_key(ssh_bastion, tmp_path_factory):
    """An ed25519 key protected by PASSPHRASE (OpenSSH's format), authorized on the bastion."""
    path = tmp_path_factory.mktemp("cli_passphrase") / "client"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "etl-wizard-cli", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ssh_bastion.authorize(path.with_suffix(".pub").read_text())
    return path


def test_an_encrypted_key_asks_for_its_passphrase_or_reads_it(
    etl, ssh_bastion, postgres_db, passphrase_key, monkeypatch
):
    assert key_is_encrypted(passphrase_key.read_text())
    assert not key_is_encrypted(ssh_bastion.key.private_key) and not key_is_encrypted(ssh_bastion.rsa_key.private_key)
    options = [
        "--ssh-host",
        ssh_bastion.host,
        "--ssh-port",
        str(ssh_bastion.port),
        "--ssh-user",
        ssh_bastion.user,
        "--ssh-key",
        str(passphrase_key),
        "--ssh-host-key",
        ssh_bastion.host_key_fingerprint,
        "--tls-mode",
        "disable",
    ]
    asked = create(etl, "asked", postgres_db, *options, input=f"{PASSPHRASE}\n{PASSWORD}\n")
    assert asked.exit_code == 0, asked.output
    assert asked.stderr == (
        "Passphrase of the SSH key for connection asked: \nPassword for connection asked (empty for none): \n"
    )
    monkeypatch.setenv("KEY_PASSPHRASE", PASSPHRASE)
    read = create(etl, "read", postgres_db, *options, "--ssh-passphrase-env", "KEY_PASSPHRASE")
    assert read.exit_code == 0, read.output
    assert read.stderr == "Password for connection read (empty for none): \n"
    for name in ("asked", "read"):
        tested = etl("connections", "test", name)
        assert tested.exit_code == 0, tested.output
        assert ("✓", "SSH bastion") in checklist(tested)
        assert PASSPHRASE not in tested.output
    assert PASSPHRASE not in asked.output + read.output


def test_a_wrong_passphrase_is_refused_naming_the_field(etl, ssh_bastion, postgres_db, passphrase_key):
    wrong = create(
        etl,
        "wrong",
        postgres_db,
        "--ssh-host",
        ssh_bastion.host,
        "--ssh-user",
        ssh_bastion.user,
        "--ssh-key",
        str(passphrase_key),
        input="not it\n\n",
    )
    assert (wrong.exit_code, wrong.stderr.splitlines()[-1]) == (1, "Error: ssh_passphrase: does not open the key")


# --- A job file --------------------------------------------------------------------------------


def bastion_file(ssh_bastion, postgres_db, dataset, **connection_changes):
    connection = {
        "type": "postgresql",
        "host": postgres_db["host"],
        "port": postgres_db["port"],
        "database": postgres_db["database"],
        "user": postgres_db["user"],
        "password_env": "TEST_PG_PASSWORD",
        "tls_mode": "disable",
        "ssh_host": ssh_bastion.host,
        "ssh_port": ssh_bastion.port,
        "ssh_user": ssh_bastion.user,
        "ssh_key_file": "keys/bastion",  # relative to the file's folder
    } | connection_changes
    return yaml.safe_dump(
        {
            "connections": {"through bastion": {k: v for k, v in connection.items() if v is not None}},
            "jobs": {
                "orders via bastion": {
                    "connection": "through bastion",
                    "schema_name": "public",
                    "table_name": "composite_pk",
                    "selected_columns": ["region", "order_no", "amount"],
                    "load_type": "catalog",
                    "destination": {"dataset": dataset, "table": "orders"},
                }
            },
        },
        sort_keys=False,
    )


def test_a_job_file_with_tls_and_a_bastion_round_trips(etl, ssh_bastion, postgres_db, tmp_path, monkeypatch, client):
    monkeypatch.setenv("TEST_PG_PASSWORD", PASSWORD)
    folder = tmp_path / "repo"
    (folder / "keys").mkdir(parents=True)
    private(folder / "keys" / "bastion", ssh_bastion.key.private_key)
    dataset = f"cli_{uuid.uuid4().hex[:8]}"
    jobs_yaml = folder / "jobs.yaml"
    jobs_yaml.write_text(bastion_file(ssh_bastion, postgres_db, dataset))
    monkeypatch.chdir(tmp_path)  # not the file's folder: its paths start there all the same

    fingerprint = ssh_bastion.host_key_fingerprint

    # The connection is created; the job is not: the wizard reads its table through the bastion,
    # whose host key nobody has confirmed yet.
    unconfirmed = etl("jobs", "apply", str(jobs_yaml))
    assert unconfirmed.exit_code == 1
    assert unconfirmed.stdout.startswith("connection through bastion: created (id ")
    assert unconfirmed.stdout.endswith(", disable, via bastion (host key not confirmed))\n")
    assert unconfirmed.stderr == (
        f"Error: the SSH bastion 127.0.0.1:{ssh_bastion.port} presents host key {fingerprint}; confirm it is "
        f"the bastion's before connecting through it. If it is the bastion's, add `ssh_host_key: {fingerprint}` "
        "to connection 'through bastion' in the file and apply again (or run: etl-wizard connections "
        f"trust-host-key 'through bastion' {fingerprint}).\n"
    )
    never_shown(unconfirmed, ssh_bastion.key.private_key)
    [connection] = client.get("/api/connections/").get_json()["connections"]
    assert connection["via"] == "ssh" and connection["ssh"] == {
        "host": ssh_bastion.host,
        "port": ssh_bastion.port,
        "user": ssh_bastion.user,
        "host_key": "",
    }

    # The host key stated in the file is pinned, as trust-host-key would; then the job is created.
    jobs_yaml.write_text(bastion_file(ssh_bastion, postgres_db, dataset, ssh_host_key=fingerprint))
    dry = etl("jobs", "apply", "--dry-run", str(jobs_yaml))
    assert dry.stdout.splitlines()[0] == "connection through bastion: would be updated (ssh_host_key)"
    applied = etl("jobs", "apply", str(jobs_yaml))
    assert applied.exit_code == 0, applied.output
    lines = applied.stdout.splitlines()
    assert lines[0] == "connection through bastion: updated (ssh_host_key)"
    assert lines[1].startswith("job orders via bastion: created (id ")
    assert lines[2] == "Applied: 1 created, 1 updated, 0 unchanged, 0 not applied."
    assert listed(etl)["through bastion"]["SECURITY"] == "disable, via bastion"

    again = etl("jobs", "apply", str(jobs_yaml))
    assert again.stdout.splitlines() == [
        "connection through bastion: no change",
        "job orders via bastion: no change",
        "Applied: 0 created, 0 updated, 2 unchanged, 0 not applied.",
    ]
    run = etl("jobs", "run", "orders via bastion", "--wait", "--timeout", "120")
    assert run.exit_code == 0, run.output
    assert " succeeded: 2 rows in " in run.stdout

    exported = etl("jobs", "export")
    assert exported.exit_code == 0
    assert yaml.safe_load(exported.stdout)["connections"] == {
        "through bastion": {
            "type": "postgresql",
            "host": postgres_db["host"],
            "port": postgres_db["port"],
            "database": postgres_db["database"],
            "user": postgres_db["user"],
            "tls_mode": "disable",
            "via": "ssh",
            "ssh_host": ssh_bastion.host,
            "ssh_port": ssh_bastion.port,
            "ssh_user": ssh_bastion.user,
            "ssh_host_key": fingerprint,
        }
    }  # no password, no key, no key file: where they are is the user's to say...
    assert "ssh_key_file" in exported.stdout.split("connections:")[0]  # ...and the header says how
    never_shown(exported, ssh_bastion.key.private_key)
    (tmp_path / "exported.yaml").write_text(exported.stdout)
    round_trip = etl("jobs", "apply", str(tmp_path / "exported.yaml"))
    assert round_trip.exit_code == 0, round_trip.output
    assert round_trip.stdout.splitlines()[-1] == "Applied: 0 created, 0 updated, 2 unchanged, 0 not applied."

    # Security settings cannot be edited in place: they are reported, as any other difference.
    jobs_yaml.write_text(bastion_file(ssh_bastion, postgres_db, dataset, tls_mode="require", ssh_port=2222))
    differs = etl("jobs", "apply", str(jobs_yaml))
    assert differs.exit_code == 1
    assert differs.stdout.splitlines()[0].startswith(
        "connection through bastion: differs in tls_mode, ssh_port, not applied: a connection cannot be edited"
    )
    jobs_yaml.write_text(
        bastion_file(ssh_bastion, postgres_db, dataset, ssh_host=None, ssh_port=None, ssh_user=None, ssh_key_file=None)
    )
    direct = etl("jobs", "apply", str(jobs_yaml))
    assert direct.stdout.splitlines()[0].startswith(
        "connection through bastion: differs in via, ssh_host, ssh_port, ssh_user, not applied"
    )


def test_a_job_file_with_security_settings_is_checked_before_anything_changes(
    etl, ssh_bastion, postgres_db, tmp_path, monkeypatch, client
):
    monkeypatch.setenv("TEST_PG_PASSWORD", PASSWORD)
    jobs_yaml = tmp_path / "jobs.yaml"
    refused = [
        (
            {"password": PASSWORD},
            "connection 'through bastion': no password in a job file (it lives in version control): give "
            "password_env (the variable that holds it), or let apply ask.",
        ),
        (
            {"ssh_private_key": "the key itself"},
            "connection 'through bastion': no ssh_private_key in a job file (it lives in version control): "
            "give ssh_key_file (a path).",
        ),
        (
            {"ssh_hots": "bastion"},
            "connection 'through bastion': unknown field(s) ssh_hots (did you mean ssh_host?); known: type, host, "
            "port, database, user, project, tls_mode, via, ssh_host, ssh_port, ssh_user, ssh_host_key, "
            "cloudsql_instance, cloudsql_ip_type, cloudsql_iam, password_env, tls_ca_file, tls_client_cert_file, "
            "tls_client_key_file, ssh_key_file, ssh_passphrase_env.",
        ),
        (
            {"tls_mode": "verify-identity"},
            "connection 'through bastion': tls_mode must be one of disable, prefer, require, verify-ca, "
            "verify-full for postgresql.",
        ),
        (
            {"via": "direct"},
            "connection 'through bastion': ssh_host is used only with via ssh, not direct.",
        ),
        (
            {"ssh_port": "twenty-two"},
            "connection 'through bastion': ssh_port must be a whole number from 1 to 65535.",
        ),
        (
            {"ssh_key_file": None},
            "connection 'through bastion': ssh_key_file is required with via ssh.",
        ),
        (
            {"cloudsql_iam": "yes"},
            "connection 'through bastion': cloudsql_iam must be true or false.",
        ),
        (
            {"ssh_key_file": "keys/missing"},
            f"connection 'through bastion': ssh_key_file names {tmp_path / 'keys' / 'missing'}, which is not "
            "a file this user may read.",
        ),
        (
            {"ssh_passphrase_env": "NO_SUCH_VARIABLE_14"},
            "connection 'through bastion': ssh_passphrase_env names 'NO_SUCH_VARIABLE_14', which is not set.",
        ),
    ]
    (tmp_path / "keys").mkdir()
    private(tmp_path / "keys" / "bastion", ssh_bastion.key.private_key)
    for changes, message in refused:
        jobs_yaml.write_text(bastion_file(ssh_bastion, postgres_db, "cli_nowhere", **changes))
        result = etl("jobs", "apply", str(jobs_yaml))
        assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n"), changes
    assert PASSWORD not in "".join(message for _, message in refused)
    bigquery = "connections:\n  bq:\n    type: bigquery\n    project: p\n    tls_mode: require\n"
    jobs_yaml.write_text(bigquery)
    assert etl("jobs", "apply", str(jobs_yaml)).stderr == (
        "Error: connection 'bq': tls_mode is for postgresql and mysql connections, not bigquery.\n"
    )
    assert client.get("/api/connections/").get_json()["connections"] == []
    assert client.get("/api/etl/jobs/").get_json()["jobs"] == []
