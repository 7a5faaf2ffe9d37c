"""Saved source connections: create, list, test, delete, and open one as a Source.

A source opened here borrows its catalog connections from the saved connection's pool
(sources/pool.py, held by Stack.pools).
"""

import logging
from typing import Any

from .errors import NotFound
from .model import Connection
from .sources import open_source
from .sources.base import Source
from .stack import Stack

log = logging.getLogger(__name__)
COLLECTION = "connections"
SECRET_PREFIX = "etl-connection-"  # infra/ grants the functions these secrets only


def _secret_name(connection_id: str) -> str:
    return SECRET_PREFIX + connection_id


def create_connection(stack: Stack, body: object) -> dict[str, Any]:
    connection, password = Connection.from_payload(body)
    stack.secrets.put(_secret_name(connection.id), password)
    stack.store.put(COLLECTION, connection.id, connection.to_dict())
    log.info("created %s (%s, id %s)", connection.label, connection.type, connection.id)
    return connection.to_dict()


def list_connections(stack: Stack) -> list[dict[str, Any]]:
    return sorted(stack.store.list(COLLECTION), key=lambda c: c["name"].lower())


def get_connection(stack: Stack, connection_id: str) -> Connection:
    doc = stack.store.get(COLLECTION, connection_id)
    if doc is None:
        raise NotFound(f"connection {connection_id} does not exist")
    return Connection.from_doc(doc)


def delete_connection(stack: Stack, connection_id: str) -> None:
    connection = get_connection(stack, connection_id)
    stack.store.delete(COLLECTION, connection_id)
    stack.secrets.delete(_secret_name(connection_id))
    stack.pools.drop(connection_id)
    log.info("deleted %s (id %s)", connection.label, connection_id)


def open_connection(stack: Stack, connection_id: str) -> Source:
    try:
        connection = get_connection(stack, connection_id)  # read each time: a deletion counts at once
    except NotFound:
        stack.pools.drop(connection_id)  # deleted through another process: its connections close here too
        raise

    def read_password() -> str:
        try:
            return stack.secrets.get(_secret_name(connection_id))
        except NotFound:
            return ""

    password, pool = stack.pools.get(connection, read_password)
    return open_source(connection, password, stack.settings, pool)


def test_connection(stack: Stack, connection_id: str) -> dict[str, Any]:
    with open_connection(stack, connection_id) as source:
        version = source.test()
    return {"connection_id": connection_id, "server_version": version}


def list_tables(stack: Stack, connection_id: str) -> list[dict[str, Any]]:
    with open_connection(stack, connection_id) as source:
        return source.list_tables()
