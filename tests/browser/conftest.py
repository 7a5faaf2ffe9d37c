"""The browser tests: Debian's Chromium driven by Playwright against the wizard served over HTTP by
a real server thread, on the embedded stack (the emulator, a temporary job store) with real
PostgreSQL and MariaDB sources. Each test saves a screenshot under test-output/."""

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).parents[2] / "test-output"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: apt-get install chromium (bin/test installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a run or a preview may take a few seconds on a busy machine

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def server(stack):
    app = create_app(stack=stack)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    stack.publisher.drain()


@pytest.fixture
def page(browser, server, request):
    # Depends on server so that it is torn down first: the screenshot shows the page while the
    # server still answers, not the errors of calls made after it stopped.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"
