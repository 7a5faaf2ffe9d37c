"""The wizard offers the connection the demo features (its sample shop) first, already chosen; the
user may pick another."""

import threading

from playwright.sync_api import expect
from werkzeug.serving import make_server

from web.app import create_app


def test_the_featured_connection_comes_first_and_is_chosen(browser, stack, connect, postgres_db, mysql_db):
    connect("mysql", mysql_db, "A MariaDB")  # first by name
    sample = connect("postgresql", postgres_db, "Sample shop (PostgreSQL)")
    http = make_server("127.0.0.1", 0, create_app(stack=stack, featured_connection=sample), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{http.server_port}/")
        choices = page.locator("#connection-list .choice label")
        expect(choices.first).to_contain_text("Sample shop (PostgreSQL)")
        expect(page.locator(f"#connection-{sample}")).to_be_checked()
        page.get_by_label("A MariaDB", exact=False).check()
        expect(page.locator(f"#connection-{sample}")).not_to_be_checked()
    finally:
        context.close()
        http.shutdown()
