"""The secret scan (issue 14): no secret of a connection — its password, its SSH private key and the
key's passphrase, its TLS client key and certificate — appears in any response, log line (DEBUG
included), job-store document or error message, whatever route is taken and whatever fails; the
secret store holds each of them, whole.

The connections: MariaDB with a password; PostgreSQL and MariaDB through the tests' SSH bastion with
passphrase-protected keys (RSA in encrypted PEM, ed25519 in OpenSSH's format); the tests' TLS-only
PostgreSQL with a client certificate (verify-full); and the failing kinds: a wrong password, a
wrong passphrase, a CA that did not sign the server, fields the form refuses."""

import json
import logging
import os
import sqlite3
import stat
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pymysql
import pytest

from etlwizard.connections import SECRET_PREFIX
from etlwizard.job import runs_collection
from etlwizard.reach.options import Credentials

PASSWORD = "Scan-pa55;w0rd'\"%&/ -14a"  # quotes, URL and conninfo characters
PG_PASSWORD = "pg-Scan-pa55-w0rd-7c1e"  # the local PostgreSQL trusts: sent where a driver would send it
TLS_PASSWORD = "tls-Scan-pa55-w0rd-2b9f"
WRONG_PASSWORD = "wrong-Scan-pa55-w0rd-5d0a"
PASSPHRASE = "scan passphrase: correct horse 14"
WRONG_PASSPHRASE = "not the scan passphrase 14"


@pytest.fixture(scope="module")
def scan_user(mysql_db):
    """A MariaDB account with a password (root has none here), reading the test database."""
    user = f"etl_scan_{uuid.uuid4().hex[:6]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cursor:
        for host in ("%", "localhost"):
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, PASSWORD))
            cursor.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO %s@%s", (user, host))
    yield {**mysql_db, "user": user}
    with admin.cursor() as cursor:
        for host in ("%", "localhost"):
            cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
    admin.close()


@pytest.fixture(scope="module")
def passphrase_keys(ssh_bastion, tmp_path_factory):
    """Client keys protected by PASSPHRASE, as ssh-keygen makes them, authorized on the bastion."""
    folder = tmp_path_factory.mktemp("scan_keys")
    keys = {}
    for kind, options in {"ed25519": ["-t", "ed25519"], "rsa": ["-t", "rsa", "-b", "2048", "-m", "PEM"]}.items():
        path = folder / f"scan_{kind}"
        subprocess.run(
            ["ssh-keygen", "-q", *options, "-N", PASSPHRASE, "-C", f"etl-wizard-scan-{kind}", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        ssh_bastion.authorize(path.with_suffix(".pub").read_text())
        keys[kind] = path.read_text()
    return keys


def pieces(secret: str) -> set[str]:
    """What of a secret must never be seen: all of it, as JSON and URLs escape it, and each line of
    a PEM key or certificate of 16 characters or more (its base64 body, an encrypted key's DEK-Info),
    but not its -----BEGIN/END----- lines, which every key of the kind shares."""
    found = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)}
    for line in secret.splitlines():
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):
            found.add(line)
    return found


def leaks(text: str, secrets: dict[str, str], public: str = "") -> list[str]:
    """The secrets `text` shows a piece of. A piece that is in `public` too is not one: a client
    certificate's line that encodes its issuer's name is the same line in the CA's own certificate."""
    return sorted(
        {name for name, secret in secrets.items() for piece in pieces(secret) if piece in text and piece not in public}
    )


class Seen:
    """Every response body of the scan, named by its route."""

    def __init__(self, client):
        self.client = client
        self.bodies: list[tuple[str, str]] = []

    def call(self, method: str, path: str, expected: int, **kwargs):
        response = getattr(self.client, method)(path, **kwargs)
        self.bodies.append((f"{method.upper()} {path} -> {response.status_code}", response.get_data(as_text=True)))
        assert response.status_code == expected, (method, path, response.get_json())
        return response.get_json()

    def create(self, expected: int = 201, **fields) -> dict:
        return self.call("post", "/api/connections/", expected, json=fields)

    def run_now(self, stack, job_id: str) -> dict:
        self.call("post", f"/api/etl/jobs/{job_id}/run/", 202)
        assert stack.publisher.drain(timeout=120)
        return self.call("get", f"/api/etl/jobs/{job_id}/runs/", 200)["runs"][0]


def job_body(cid, dataset, schema, table, columns, destination_table, **more):
    return {
        "name": destination_table,
        "connection_id": cid,
        "schema_name": schema,
        "table_name": table,
        "selected_columns": columns,
        "load_type": "catalog",
        "destination": {"mode": "new", "dataset": dataset, "table": destination_table},
        "schedule": {"type": "manual"},
        **more,
    }


ORDERS = ["region", "order_no", "amount", "modified_at"]


def test_no_secret_leaves_the_secret_store(
    client,
    stack,
    settings,
    caplog,
    dataset,
    postgres_db,
    scan_user,
    ssh_bastion,
    passphrase_keys,
    tls_postgres,
    tls_certificates,
):
    caplog.set_level(logging.DEBUG)
    seen = Seen(client)
    bastion = {
        "via": "ssh",
        "ssh_host": ssh_bastion.host,
        "ssh_port": ssh_bastion.port,
        "ssh_user": ssh_bastion.user,
        "ssh_host_key": ssh_bastion.host_key_fingerprint,
        "ssh_passphrase": PASSPHRASE,
    }
    client_cert = {
        "tls_client_cert": tls_certificates.client.cert_pem,
        "tls_client_key": tls_certificates.client.key_pem,
    }
    tls = {
        "host": tls_postgres.host,
        "port": tls_postgres.port,
        "database": tls_postgres.database,
        "user": tls_postgres.cert_role,
        "tls_mode": "verify-full",
        "password": TLS_PASSWORD,
        **client_cert,
    }
    secrets = {
        "password": PASSWORD,
        "pg password": PG_PASSWORD,
        "tls password": TLS_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "passphrase": PASSPHRASE,
        "wrong passphrase": WRONG_PASSPHRASE,
        "ssh key (RSA, encrypted PEM)": passphrase_keys["rsa"],
        "ssh key (ed25519, OpenSSH)": passphrase_keys["ed25519"],
        "tls client key": tls_certificates.client.key_pem,
        "tls client certificate": tls_certificates.client.cert_pem,
    }
    public = tls_certificates.ca.cert_pem + tls_certificates.other_ca.cert_pem  # CAs are no secret
    expected: dict[str, Credentials] = {}  # what the secret store must hold, by connection id

    # --- connections that work, through every route -----------------------------------------------
    maria = seen.create(name="maria", type="mysql", **scan_user, password=PASSWORD)["connection"]["id"]
    expected[maria] = Credentials(password=PASSWORD)
    pg_ssh = seen.create(
        name="pg via bastion",
        type="postgresql",
        **postgres_db,
        password=PG_PASSWORD,
        ssh_private_key=passphrase_keys["rsa"],
        **bastion,
    )["connection"]["id"]
    expected[pg_ssh] = Credentials(PG_PASSWORD, ssh_key=passphrase_keys["rsa"], ssh_passphrase=PASSPHRASE)
    maria_ssh = seen.create(
        name="maria via bastion",
        type="mysql",
        **scan_user,
        password=PASSWORD,
        ssh_private_key=passphrase_keys["ed25519"],
        **bastion,
    )["connection"]["id"]
    expected[maria_ssh] = Credentials(PASSWORD, ssh_key=passphrase_keys["ed25519"], ssh_passphrase=PASSPHRASE)
    pg_tls = seen.create(name="pg client certificate", type="postgresql", tls_ca=tls_certificates.ca.cert_pem, **tls)[
        "connection"
    ]["id"]
    expected[pg_tls] = Credentials(
        TLS_PASSWORD, client_cert=tls_certificates.client.cert_pem, client_key=tls_certificates.client.key_pem
    )
    seen.call("get", "/api/connections/", 200)
    seen.call(
        "post", f"/api/connections/{pg_ssh}/host-key/", 200, json={"fingerprint": ssh_bastion.host_key_fingerprint}
    )

    tables = {
        maria: (scan_user["database"], "composite_pk", ORDERS),
        pg_ssh: ("public", "composite_pk", ORDERS),
        maria_ssh: (scan_user["database"], "composite_pk", ORDERS),
        pg_tls: ("public", "shop", ["id", "note", "amount", "updated_at"]),
    }
    jobs = {}
    for cid, (schema, table, columns) in tables.items():
        tested = seen.call("post", f"/api/connections/{cid}/test/", 200)
        assert {s["status"] for s in tested["steps"]} <= {"ok", "skipped"}, tested
        listed = seen.call("get", f"/api/connections/{cid}/tables/", 200)["tables"]
        assert {"schema_name": schema, "table_name": table} in [
            {k: t[k] for k in ("schema_name", "table_name")} for t in listed
        ]
        preview = seen.call(
            "post",
            f"/api/connections/{cid}/fetch-table-preview/",
            200,
            json={"schema_name": schema, "table_name": table},
        )
        assert preview["sample_rows"]
        seen.call(
            "post",
            f"/api/connections/{cid}/fetch-table-preview/",
            404,
            json={"schema_name": schema, "table_name": "nope"},
        )
        if cid != maria_ssh:  # (a MariaDB run through the bastion: test_connect_ssh.py)
            body = job_body(cid, dataset, schema, table, columns, f"t_{cid}")
            jobs[cid] = seen.call("post", "/api/etl/jobs/", 201, json=body)["job"]["id"]
    for job_id in jobs.values():
        done = seen.run_now(stack, job_id)
        assert done["status"] == "succeeded" and done["rows"] > 0, done
        seen.call("get", f"/api/etl/jobs/{job_id}/", 200)
    seen.call("get", "/api/etl/jobs/", 200)

    # --- what fails ---------------------------------------------------------------------------------
    # a wrong password
    wrong = seen.create(name="wrong password", type="mysql", **scan_user, password=WRONG_PASSWORD)["connection"]["id"]
    expected[wrong] = Credentials(password=WRONG_PASSWORD)
    assert seen.call("post", f"/api/connections/{wrong}/test/", 401)["details"]

    # a CA that did not sign the server's certificate, with the client key and certificate given
    unknown_ca = seen.create(name="unknown CA", type="postgresql", tls_ca=tls_certificates.other_ca.cert_pem, **tls)[
        "connection"
    ]["id"]
    expected[unknown_ca] = expected[pg_tls]
    failed = seen.call("post", f"/api/connections/{unknown_ca}/test/", 502)
    assert [s["status"] for s in failed["details"] if s["step"] == "tls"] == ["failed"], failed
    seen.call(
        "post",
        f"/api/connections/{unknown_ca}/fetch-table-preview/",
        502,
        json={"schema_name": "public", "table_name": "shop"},
    )
    seen.call("get", f"/api/connections/{unknown_ca}/tables/", 502)
    seen.call("post", "/api/etl/jobs/", 502, json=job_body(unknown_ca, dataset, "public", "shop", ["id"], "never"))

    # a wrong passphrase: refused by the form; and a saved one gone wrong (its job's run fails)
    for field, key in [("ed25519", passphrase_keys["ed25519"]), ("rsa", passphrase_keys["rsa"])]:
        refused = seen.create(
            400,
            name=f"wrong passphrase {field}",
            type="postgresql",
            **postgres_db,
            ssh_private_key=key,
            **{**bastion, "ssh_passphrase": WRONG_PASSPHRASE},
        )
        assert refused["details"][0]["field"] == "ssh_passphrase"
        no_passphrase = seen.create(
            400,
            name="no passphrase",
            type="postgresql",
            **postgres_db,
            ssh_private_key=key,
            **{**bastion, "ssh_passphrase": ""},
        )
        assert no_passphrase["details"][0]["field"] == "ssh_private_key"
    rotated = seen.create(
        name="passphrase gone wrong",
        type="postgresql",
        **postgres_db,
        password=PG_PASSWORD,
        ssh_private_key=passphrase_keys["rsa"],
        **bastion,
    )["connection"]["id"]
    rotated_job = seen.call(
        "post", "/api/etl/jobs/", 201, json=job_body(rotated, dataset, "public", "composite_pk", ORDERS, "rotated")
    )["job"]["id"]
    expected[rotated] = Credentials(PG_PASSWORD, ssh_key=passphrase_keys["rsa"], ssh_passphrase=WRONG_PASSPHRASE)
    stack.secrets.put(SECRET_PREFIX + rotated, expected[rotated].dump())  # as if saved with the wrong one
    failed = seen.call("post", f"/api/connections/{rotated}/test/", 401)
    assert [s["status"] for s in failed["details"] if s["step"] == "ssh"] == ["failed"], failed
    seen.call("get", f"/api/connections/{rotated}/tables/", 401)
    seen.call(
        "post",
        f"/api/connections/{rotated}/fetch-table-preview/",
        401,
        json={"schema_name": "public", "table_name": "composite_pk"},
    )
    failed_run = seen.run_now(stack, rotated_job)
    assert failed_run["status"] == "failed" and "cannot be used" in failed_run["error"], failed_run
    jobs[rotated] = rotated_job

    # fields the form refuses, holding secrets: a client key of another certificate, a key that is not one
    mismatched = seen.create(
        400,
        name="mismatched",
        type="postgresql",
        **{**tls, "tls_client_key": tls_certificates.other_host.key_pem},
        tls_ca=tls_certificates.ca.cert_pem,
    )
    assert mismatched["details"][0]["field"] == "tls_client_key"
    header, *_, footer = passphrase_keys["ed25519"].splitlines()
    broken_key = "\n".join([header, *passphrase_keys["rsa"].splitlines()[3:6], footer]) + "\n"
    broken = seen.create(
        400,
        name="broken",
        type="postgresql",
        **postgres_db,
        ssh_private_key=broken_key,
        **{**bastion, "ssh_passphrase": ""},
    )
    assert broken["details"][0]["field"] == "ssh_private_key"
    for page in ("/", "/connections", "/jobs"):
        seen.call("get", page, 200)

    # --- the scan -----------------------------------------------------------------------------------
    for route, text in seen.bodies:
        assert not leaks(text, secrets, public), f"{route} shows {leaks(text, secrets, public)}"
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "SSH tunnel" in logged  # the logs were captured, tunnels and all
    assert not leaks(logged, secrets, public), f"the log shows {leaks(logged, secrets, public)}"
    documents = {
        "connections": stack.store.list("connections"),
        "jobs": stack.store.list("jobs"),
        **{runs_collection(job_id): stack.store.list(runs_collection(job_id)) for job_id in jobs.values()},
    }
    assert len(documents["connections"]) == len(expected) and len(documents["jobs"]) == len(jobs)
    assert all(documents[runs_collection(job_id)] for job_id in jobs.values())
    for collection, docs in documents.items():
        text = json.dumps(docs, ensure_ascii=False)
        assert not leaks(text, secrets, public), f"job store {collection} holds {leaks(text, secrets, public)}"
    errors = [r["error"] for job_id in jobs.values() for r in stack.store.list(runs_collection(job_id)) if r["error"]]
    assert errors and not leaks("\n".join(errors), secrets, public)
    with sqlite3.connect(Path(settings.data_dir) / "jobs.sqlite3") as db:  # every document, whatever its collection
        everything = "\n".join(data for (data,) in db.execute("SELECT data FROM documents"))
    assert not leaks(everything, secrets, public), f"the job store holds {leaks(everything, secrets, public)}"
    files = [p for p in Path(settings.data_dir).rglob("*") if p.is_file() and not p.name.startswith("secrets.")]
    raw = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    assert not leaks(raw, secrets, public), (
        f"the data directory holds {leaks(raw, secrets, public)} outside the secret store"
    )

    # --- the secret store holds them, whole ---------------------------------------------------------
    secrets_file = Path(settings.data_dir) / "secrets.json"
    kept = json.loads(secrets_file.read_text())
    assert {name: Credentials.load(value) for name, value in kept.items()} == {
        SECRET_PREFIX + cid: credentials for cid, credentials in expected.items()
    }
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
