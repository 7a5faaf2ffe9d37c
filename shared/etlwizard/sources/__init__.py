"""The registry of sources: Connection.type -> the class that reads it."""

from ..config import Settings
from ..model import Connection
from .base import Source
from .bigquery import BigQuerySource
from .mysql import MySqlSource
from .postgres import PostgresSource

SOURCES: dict[str, type[Source]] = {cls.type: cls for cls in (PostgresSource, MySqlSource, BigQuerySource)}


def open_source(connection: Connection, password: str, settings: Settings) -> Source:
    return SOURCES[connection.type](connection, password, settings)
