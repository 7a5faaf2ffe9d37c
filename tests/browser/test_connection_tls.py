"""A TLS connection made through the form as a user would (issue 14): the CA uploaded, the mode left
at its default (verify-full once a CA is given), and Test's checklist green with the TLS version the
server negotiated; the same server with a CA that did not sign its certificate fails at the TLS step,
saying what to fix."""

from playwright.sync_api import expect

STEPS = "#connection-test-steps > li"


def add_tls_connection(page, server, tls_postgres, name, ca_path):
    page.goto(server + "/connections")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Type", exact=True).select_option("postgresql")
    page.get_by_label("Host", exact=True).fill(tls_postgres.host)
    page.get_by_label("Port", exact=True).fill(str(tls_postgres.port))
    page.get_by_label("Database", exact=True).fill(tls_postgres.database)
    page.get_by_label("User", exact=True).fill(tls_postgres.trust_role)
    page.locator("#conn-tls_ca").set_input_files(str(ca_path))
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("#connections-status")).to_have_text(f"{name} saved.")
    row = page.locator(f"tr[data-connection='{name}']")
    row.get_by_role("button", name=f"Test {name}").click()
    return row


def test_a_tls_connection_made_in_the_form_tests_green(page, server, tls_postgres, tls_certificates):
    row = add_tls_connection(page, server, tls_postgres, "Shop over TLS", tls_certificates.ca.cert_path)
    expect(row.locator("td.security")).to_have_text("verify-full")
    expect(page.locator("#connections-status")).to_contain_text("Shop over TLS: connected (PostgreSQL 15")
    for step in ("resolve", "tcp", "tls", "auth", "catalog"):
        expect(page.locator(f"{STEPS}[data-step='{step}']")).to_have_attribute("data-status", "ok")
    expect(page.locator(f"{STEPS}[data-step='tls']")).to_contain_text("verify-full: TLSv1.3")


def test_a_ca_that_did_not_sign_the_certificate_fails_at_the_tls_step(page, server, tls_postgres, tls_certificates):
    add_tls_connection(page, server, tls_postgres, "Wrong CA", tls_certificates.other_ca.cert_path)
    tls = page.locator(f"{STEPS}[data-step='tls']")
    expect(tls).to_have_attribute("data-status", "failed")
    expect(tls).to_contain_text("unknown CA")
    expect(tls.locator(".check-fix")).to_have_text(
        "To fix: Upload the CA certificate that signed the server's certificate."
    )
    for step in ("resolve", "tcp"):
        expect(page.locator(f"{STEPS}[data-step='{step}']")).to_have_attribute("data-status", "ok")
    for step in ("auth", "catalog"):
        expect(page.locator(f"{STEPS}[data-step='{step}']")).to_have_attribute("data-status", "skipped")
