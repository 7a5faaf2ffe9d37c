"""The WHERE clause of a load window: bounds written as SQL literals, and only ever dates, times or
integers this code made (nothing from a request reaches them)."""

from datetime import date, datetime, timedelta, timezone

import pytest

from etlwizard.config import Settings
from etlwizard.model import Connection
from etlwizard.sources.base import make_column
from etlwizard.sources.mysql import MySqlSource
from etlwizard.sources.postgres import PostgresSource
from etlwizard.typemap import BigQueryType


def source(cls):
    """A source that is never connected: building SQL needs no server."""
    return cls(
        Connection(id="c1", name="src", type=cls.type, host="127.0.0.1", port=1, database="d", user="u"), "", Settings()
    )


def cursor(kind):
    return make_column("changed at", kind.lower(), BigQueryType(kind), nullable=True)


def test_postgres_window_casts_its_bounds():
    sql = source(PostgresSource).window_sql(cursor("TIMESTAMP"), datetime(2024, 3, 1, tzinfo=timezone.utc), None)
    assert sql == ' WHERE "changed at" IS NOT NULL AND "changed at" >= \'2024-03-01 00:00:00+00:00\'::timestamptz'


def test_mysql_window_reads_aware_bounds_in_utc():
    berlin = timezone(timedelta(hours=1))
    sql = source(MySqlSource).window_sql(cursor("TIMESTAMP"), None, datetime(2024, 3, 1, 1, 30, tzinfo=berlin))
    assert sql == " WHERE `changed at` IS NOT NULL AND `changed at` < '2024-03-01 00:30:00'"


def test_key_range_bounds_are_plain_integers():
    sql = source(PostgresSource).window_sql(cursor("INT64"), 10, 20)
    assert sql == ' WHERE "changed at" IS NOT NULL AND "changed at" >= 10 AND "changed at" < 20'


def test_no_cursor_means_every_row():
    assert source(MySqlSource).window_sql(None, None, None) == ""


class _Forged(date):
    """A date whose text is not a date's: what the check must stop, even under `python -O`."""

    def isoformat(self):
        return "2024-01-01' OR '1'='1"


@pytest.mark.parametrize("cls", [PostgresSource, MySqlSource])
def test_a_bound_that_is_not_date_text_is_refused(cls):
    with pytest.raises(ValueError, match="window bound"):
        source(cls).bound_literal(_Forged(2024, 1, 1), "DATE")


@pytest.mark.parametrize("value", ["2024-01-01", 1.5, True, None])
def test_a_bound_of_another_type_is_refused(value):
    with pytest.raises(TypeError, match="window bound"):
        source(PostgresSource).bound_literal(value, "DATE")
