"""The connections page's "Security and network" section and its Test checklist (issue 14): a
connection made through the form with a TLS mode, tested step by step against the local PostgreSQL;
one to a closed port showing the failing step and what to fix; the SSH and Cloud SQL sections
following "Connect through" and the type, and sending only their own fields."""

import json
import re

from playwright.sync_api import expect

STEPS = "#connection-test-steps > li"
GREEN = "rgb(30, 123, 52)"  # --ok in style.css
RED = "rgb(179, 38, 30)"  # --bad


def fill_database(page, name, postgres_db, **overrides):
    fields = {**postgres_db, **overrides}
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Type", exact=True).select_option("postgresql")
    page.get_by_label("Host", exact=True).fill(fields["host"])
    page.get_by_label("Port", exact=True).fill(str(fields["port"]))
    page.get_by_label("Database", exact=True).fill(fields["database"])
    page.get_by_label("User", exact=True).fill(fields["user"])


def save(page):
    page.get_by_role("button", name="Save connection").click()


def saved_body(page):
    """Presses Save connection and returns the JSON body the form sent (whatever the server says)."""
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/connections/")) as request:
        save(page)
    return json.loads(request.value.post_data)


def test_a_connection_with_a_tls_mode_tests_green_step_by_step(page, server, postgres_db):
    page.goto(server + "/connections")
    fill_database(page, "Plain local PG", postgres_db)
    page.get_by_label("Password", exact=True).fill("never-shown-again")
    page.get_by_label("Connect through", exact=True).select_option("direct")
    page.get_by_label("TLS mode", exact=True).select_option("disable")
    expect(page.locator("[id='conn-tls_mode-help']")).to_have_text(
        "No encryption: anyone on the network path can read the traffic, password included."
    )
    save(page)
    expect(page.locator("#connections-status")).to_have_text("Plain local PG saved.")
    row = page.locator("tr[data-connection='Plain local PG']")
    expect(row.locator("td.security")).to_have_text("disable")
    expect(row).to_contain_text(f"postgres@127.0.0.1:5432/{postgres_db['database']}")
    assert "never-shown-again" not in page.content()

    row.get_by_role("button", name="Test Plain local PG").click()
    expect(page.locator("#connections-status")).to_contain_text("Plain local PG: connected (PostgreSQL 15")
    checklist = page.get_by_role("region", name="Test of Plain local PG")
    expect(checklist.get_by_role("list")).to_be_visible()
    for step in ("resolve", "tcp", "auth", "catalog"):
        item = page.locator(f"{STEPS}[data-step='{step}']")
        expect(item).to_have_attribute("data-status", "ok")
        expect(item.locator(".check-status")).to_have_text("OK")
        expect(item).to_have_css("border-left-color", GREEN)
    # Every step is green; a step this connection does not take (no bastion; TLS disabled) may say skipped.
    steps = page.locator(STEPS).evaluate_all("items => items.map((i) => [i.dataset.step, i.dataset.status])")
    not_ok = [(step, status) for step, status in steps if status != "ok"]
    assert all(step in ("ssh", "tls") and status == "skipped" for step, status in not_ok), steps
    expect(page.locator(f"{STEPS} .check-fix")).to_have_count(0)


def test_a_closed_port_shows_the_failing_step_and_its_fix(page, server, postgres_db):
    page.goto(server + "/connections")
    fill_database(page, "Closed port", postgres_db, port=1)
    save(page)
    row = page.locator("tr[data-connection='Closed port']")
    expect(row).to_contain_text("@127.0.0.1:1/")
    expect(row.locator("td.security")).to_have_text("disable")  # the default for a loopback host

    row.get_by_role("button", name="Test Closed port").click()
    tcp = page.locator(f"{STEPS}[data-step='tcp']")
    expect(tcp).to_have_attribute("data-status", "failed")
    expect(tcp.locator(".check-status")).to_have_text("Failed")
    expect(tcp).to_have_css("border-left-color", RED)
    expect(tcp.locator(".check-fix")).to_be_visible()
    expect(tcp.locator(".check-fix")).to_have_text(re.compile(r"^To fix: \S"))
    expect(page.locator(f"{STEPS}[data-step='resolve']")).to_have_attribute("data-status", "ok")
    expect(page.locator("#connections-status")).to_contain_text("Closed port")
    expect(page.locator("#connections-status")).not_to_contain_text("connected")
    # Nothing after the TCP connection was tried: those steps are skipped (or not listed).
    for step in ("auth", "catalog"):
        later = page.locator(f"{STEPS}[data-step='{step}']")
        if later.count():
            expect(later).to_have_attribute("data-status", "skipped")
    expect(page.locator(f"{STEPS}[data-status='failed']")).to_have_count(1)
    expect(page.get_by_text("[object Object]")).to_have_count(0)


def test_the_ssh_and_cloud_sql_sections_follow_the_choices_and_send_only_their_fields(page, server):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    page.goto(server + "/connections")
    network = page.get_by_role("group", name="Security and network")
    ssh = page.get_by_role("group", name="SSH bastion")
    cloudsql = page.get_by_role("group", name="Cloud SQL instance")
    tls_mode = page.get_by_label("TLS mode", exact=True)

    # PostgreSQL, direct: TLS with PostgreSQL's modes, no bastion, no instance.
    expect(network).to_be_visible()
    expect(ssh).to_be_hidden()
    expect(cloudsql).to_be_hidden()
    expect(tls_mode.locator("option")).to_have_text(
        [
            "(default)",
            re.compile("^disable"),
            re.compile("^prefer"),
            re.compile("^require"),
            re.compile("^verify-ca"),
            re.compile("^verify-full"),
        ]
    )
    expect(tls_mode.locator("option").first).to_have_attribute("value", "")
    page.get_by_label("Host", exact=True).fill("db.example.com")
    expect(page.locator("[id='conn-tls_mode-help']")).to_contain_text("The server chooses require")
    tls_mode.select_option("verify-full")
    expect(page.locator("[id='conn-tls_mode-help']")).to_contain_text("protects against impersonation")

    # MySQL: its own names for the same levels, the chosen level kept.
    page.get_by_label("Type", exact=True).select_option("mysql")
    expect(tls_mode.locator("option")).to_have_text(
        [
            "(default)",
            re.compile("^disabled"),
            re.compile("^preferred"),
            re.compile("^required"),
            re.compile("^verify-ca"),
            re.compile("^verify-identity"),
        ]
    )
    expect(tls_mode).to_have_value("verify-identity")

    # Through a bastion: its section, and still the database's host, port and TLS.
    page.get_by_label("Connect through", exact=True).select_option("ssh")
    expect(ssh).to_be_visible()
    expect(cloudsql).to_be_hidden()
    for label in ("Bastion host", "Bastion port", "Bastion user", "Private key (file)"):
        expect(ssh.get_by_label(label)).to_be_visible()
    expect(page.get_by_label("Host", exact=True)).to_be_visible()
    expect(tls_mode).to_be_visible()

    # A Cloud SQL instance: no host, port, TLS or bastion; with IAM login, no password either.
    page.get_by_label("Connect through", exact=True).select_option("cloudsql")
    expect(cloudsql).to_be_visible()
    expect(ssh).to_be_hidden()
    expect(page.get_by_label("Host", exact=True)).to_be_hidden()
    expect(page.get_by_label("Port", exact=True)).to_be_hidden()
    expect(tls_mode).to_be_hidden()
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    cloudsql.get_by_label(re.compile("^IAM database login")).check()
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()

    # BigQuery: no network section at all, a project instead of a host.
    page.get_by_label("Type", exact=True).select_option("bigquery")
    expect(network).to_be_hidden()
    expect(page.get_by_label("Host", exact=True)).to_be_hidden()
    expect(page.get_by_label("Google Cloud project (BigQuery)", exact=True)).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    page.get_by_label("Type", exact=True).select_option("postgresql")
    expect(cloudsql).to_be_visible()  # the way in chosen before is kept
    expect(page.get_by_label("Google Cloud project (BigQuery)", exact=True)).to_be_hidden()

    # What is sent: a Cloud SQL instance with IAM login (a JSON true), none of the hidden fields.
    page.get_by_label("Name", exact=True).fill("Orders on Cloud SQL")
    page.get_by_label("Instance connection name", exact=True).fill("shop-prod-123:europe-west1:orders")
    page.get_by_label("IP address", exact=True).select_option("private")
    page.get_by_label("Database", exact=True).fill("orders")
    page.get_by_label("User", exact=True).fill("etl-runner@shop-prod-123.iam")
    project = page.get_by_label("Google Cloud project (BigQuery)", exact=True)
    project.evaluate("(input) => { input.value = 'not-sent'; }")  # hidden: not sent whatever it holds
    assert saved_body(page) == {
        "name": "Orders on Cloud SQL",
        "type": "postgresql",
        "via": "cloudsql",
        "database": "orders",
        "user": "etl-runner@shop-prod-123.iam",
        "cloudsql_instance": "shop-prod-123:europe-west1:orders",
        "cloudsql_ip_type": "private",
        "cloudsql_iam": True,
    }

    # Through a bastion: the key file's text, the ports as numbers, the database's TLS mode.
    page.goto(server + "/connections")
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    page.get_by_label("Name", exact=True).fill("Behind the bastion")
    page.get_by_label("Host", exact=True).fill("10.20.0.5")
    page.get_by_label("Port", exact=True).fill("5433")
    page.get_by_label("Database", exact=True).fill("shop")
    page.get_by_label("User", exact=True).fill("reader")
    page.get_by_label("Password", exact=True).fill("s3cret")
    page.get_by_label("Connect through", exact=True).select_option("ssh")
    tls_mode.select_option("require")
    page.get_by_label("Bastion host", exact=True).fill("127.0.0.1")
    page.get_by_label("Bastion port", exact=True).fill("2222")
    page.get_by_label("Bastion user", exact=True).fill("tunnel")
    page.get_by_label("Private key (file)", exact=True).set_input_files(
        files=[{"name": "id_ed25519", "mimeType": "application/octet-stream", "buffer": key}]
    )
    assert saved_body(page) == {
        "name": "Behind the bastion",
        "type": "postgresql",
        "via": "ssh",
        "host": "10.20.0.5",
        "port": 5433,
        "database": "shop",
        "user": "reader",
        "password": "s3cret",
        "tls_mode": "require",
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "tunnel",
        "ssh_private_key": key.decode(),
    }
    assert key.decode() not in page.content()


def test_a_bastion_host_key_is_confirmed_from_the_checklist(page, server):
    """The confirm step on its own (the API's answers stood in for, so this needs no bastion): the
    fingerprint is shown, "Trust this host key" posts it, and the test runs again by itself."""
    fingerprint = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
    bastion = {"host": "bastion.example.com", "port": 22, "user": "tunnel", "host_key": ""}
    connection = dict(id="c0ffee000001", name="Via bastion", type="postgresql", host="10.0.0.5", port=5432)
    connection.update(database="shop", user="reader", via="ssh", ssh=bastion, cloudsql=None)
    connection.update(tls={"mode": "require", "ca": False, "client_certificate": False})
    connection.update(security="require, via bastion (host key not confirmed)")
    ok = dict(step="resolve", title="Name resolution", status="ok", detail="bastion.example.com is 192.0.2.7")
    fix = "Compare it with ssh-keygen -lf on the bastion."
    confirm = dict(step="ssh", title="SSH bastion", status="confirm", detail="A host key not confirmed yet.", fix=fix)
    confirm["fingerprint"] = fingerprint
    refusal = "ssh: the bastion's host key needs confirming"
    trusted = []

    def api(route, request):
        if request.url.endswith("/api/connections/") and request.method == "GET":
            return route.fulfill(json={"status": "success", "connections": [connection]})
        if request.url.endswith("/host-key/"):
            trusted.append(request.post_data_json)
            connection["ssh"]["host_key"] = fingerprint
            connection["security"] = "require, via bastion"
            return route.fulfill(json={"status": "success", "connection": connection})
        if request.url.endswith("/test/") and not connection["ssh"]["host_key"]:
            return route.fulfill(status=409, json={"status": "error", "message": refusal, "details": [ok, confirm]})
        if request.url.endswith("/test/"):
            steps = [ok, {**confirm, "status": "ok", "detail": "Host key matches.", "fix": None}]
            return route.fulfill(
                json={
                    "status": "success",
                    "connection_id": connection["id"],
                    "server_version": "PostgreSQL 15.8",
                    "steps": steps,
                }
            )
        return route.fallback()

    page.route(re.compile(r".*/api/connections/.*"), api)
    page.goto(server + "/connections")
    row = page.locator("tr[data-connection='Via bastion']")
    expect(row).to_contain_text("reader@10.0.0.5:5432/shop via bastion.example.com")
    expect(row.locator("td.security")).to_have_text("require, via bastion (host key not confirmed)")
    row.get_by_role("button", name="Test Via bastion").click()

    step = page.locator(f"{STEPS}[data-step='ssh']")
    expect(step).to_have_attribute("data-status", "confirm")
    expect(step.locator("code")).to_have_text(fingerprint)
    expect(step.locator(".check-fix")).to_have_text(f"To fix: {fix}")
    expect(page.locator("#connections-status")).to_have_text(f"Via bastion: {refusal}")
    step.get_by_role("button", name="Trust this host key").click()

    expect(page.locator("#connections-status")).to_have_text("Via bastion: connected (PostgreSQL 15.8).")
    expect(step).to_have_attribute("data-status", "ok")
    expect(page.get_by_role("button", name="Trust this host key")).to_have_count(0)
    expect(page.get_by_role("heading", name="Test of Via bastion")).to_be_focused()
    expect(row.locator("td.security")).to_have_text("require, via bastion")
    assert trusted == [{"fingerprint": fingerprint}]
