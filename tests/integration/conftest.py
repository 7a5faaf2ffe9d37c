"""Fixtures of the integration tests beyond tests/conftest.py's."""

import pytest


@pytest.fixture
def function_env(monkeypatch, settings):
    """What the deployed functions read from their environment, pointed at the test's stack."""
    for name, value in {
        "ETL_STACK": "embedded",
        "ETL_PROJECT": settings.project,
        "ETL_BIGQUERY_ENDPOINT": settings.bigquery_endpoint,
        "ETL_DATA_DIR": str(settings.data_dir),
    }.items():
        monkeypatch.setenv(name, value)
