"""tests/conftest.py's hook: under CI=true a skipped test fails the run, naming what it missed."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).parents[1] / "conftest.py"
OPTIONS = ("-p", "no:cacheprovider", "-p", "no:asyncio")  # as pyproject.toml's addopts
TESTS = """
import pytest

@pytest.fixture
def server():
    pytest.skip("PostgreSQL is not running")

def test_runs():
    pass

def test_skips_in_the_test():
    pytest.skip("Chromium is missing")

def test_skips_in_a_fixture(server):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""


@pytest.fixture
def suite(pytester):
    source = CONFTEST.read_text()
    pytester.makeconftest("import pytest\n" + source[source.index("# --- CI=true") :])  # the hook alone
    pytester.makepyfile(test_suite=TESTS)
    return pytester


def test_under_ci_a_skip_fails_and_says_why(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest(*OPTIONS)
    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*skipped, and CI=true runs every test: Skipped: Chromium is missing*",
            "*skipped, and CI=true runs every test: Skipped: PostgreSQL is not running*",
        ]
    )


@pytest.mark.parametrize("ci", [None, "false"])
def test_elsewhere_a_skip_is_a_skip(suite, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    suite.runpytest(*OPTIONS).assert_outcomes(passed=1, skipped=2, xfailed=1)
