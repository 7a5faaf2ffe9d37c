"""The registry of sources: Connection.type -> the class that reads it."""

from ..config import Settings
from ..model import Connection
from ..reach.cloudsql import CloudSqlConnector
from ..reach.options import Credentials
from .base import Source
from .bigquery import BigQuerySource
from .mysql import MySqlSource
from .pool import ConnectionPool
from .postgres import PostgresSource
from .sql import SqlSource

SOURCES: dict[str, type[Source]] = {cls.type: cls for cls in (PostgresSource, MySqlSource, BigQuerySource)}


def open_source(
    connection: Connection,
    credentials: Credentials,
    settings: Settings,
    pool: ConnectionPool | None = None,
    cloudsql: CloudSqlConnector | None = None,
) -> Source:
    """pool: the saved connection's catalog connections (SQL sources); without it, a source of
    the SQL kind keeps its own until closed. cloudsql: the process's Cloud SQL connector."""
    source = SOURCES[connection.type]
    if issubclass(source, SqlSource):
        return source(connection, credentials, settings, pool, cloudsql)
    return source(connection, credentials, settings)
