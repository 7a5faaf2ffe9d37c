"""Saved source connections: create, list, test, delete, and open one as a Source.

A source opened here borrows its catalog connections from the saved connection's pool
(sources/pool.py, held by Stack.pools); one through an SSH bastion has its own, closed with its
tunnel. Its secrets (Credentials) live in one secret-store entry.
"""

import logging
import re
from typing import Any

from .errors import Conflict, InvalidInput, NotFound
from .model import Connection
from .payload import require_object, require_text
from .reach.checks import check
from .reach.options import Credentials
from .sources import open_source
from .sources.base import Source
from .stack import Stack

log = logging.getLogger(__name__)
COLLECTION = "connections"
SECRET_PREFIX = "etl-connection-"  # infra/ grants the functions these secrets only
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def _secret_name(connection_id: str) -> str:
    return SECRET_PREFIX + connection_id


def create_connection(stack: Stack, body: object) -> dict[str, Any]:
    connection, credentials = Connection.from_payload(body)
    stack.secrets.put(_secret_name(connection.id), credentials.dump())
    stack.store.put(COLLECTION, connection.id, connection.to_doc())
    log.info("created %s (%s, %s, id %s)", connection.label, connection.type, connection.security, connection.id)
    return connection.to_dict()


def list_connections(stack: Stack) -> list[dict[str, Any]]:
    found = [Connection.from_doc(doc) for doc in stack.store.list(COLLECTION)]
    return [c.to_dict() for c in sorted(found, key=lambda c: c.name.lower())]


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


def read_credentials(stack: Stack, connection_id: str) -> Credentials:
    try:
        return Credentials.load(stack.secrets.get(_secret_name(connection_id)))
    except NotFound:
        return Credentials()


def open_connection(stack: Stack, connection_id: str) -> Source:
    try:
        connection = get_connection(stack, connection_id)  # read each time: a deletion counts at once
    except NotFound:
        stack.pools.drop(connection_id)  # deleted through another process: its connections close here too
        raise
    cloudsql = stack.cloudsql if connection.cloudsql is not None else None
    if connection.ssh is not None:  # its connections live no longer than its tunnel
        return open_source(connection, read_credentials(stack, connection_id), stack.settings, None, cloudsql)
    credentials, pool = stack.pools.get(connection, lambda: read_credentials(stack, connection_id))
    return open_source(connection, credentials, stack.settings, pool, cloudsql)


def test_connection(stack: Stack, connection_id: str) -> dict[str, Any]:
    """Every step of reaching the database, each with its result (reach/checks.py)."""
    with open_connection(stack, connection_id) as source:
        return check(source)


def trust_host_key(stack: Stack, connection_id: str, body: object) -> dict[str, Any]:
    """Pin the bastion's host key the user confirmed, if the bastion still presents it."""
    from .reach.ssh import presented_host_key

    connection = get_connection(stack, connection_id)
    fingerprint = require_text(require_object(body), "fingerprint", max_length=60)
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InvalidInput("fingerprint", "must be a SHA256 fingerprint (SHA256:...)")
    if connection.ssh is None:
        raise InvalidInput("fingerprint", f"{connection.label} does not go through an SSH bastion")
    presented = presented_host_key(connection.ssh.host, connection.ssh.port, stack.settings.connect_timeout)
    if presented != fingerprint:
        raise Conflict(f"the bastion now presents {presented}, not {fingerprint}: test the connection again")
    trusted = connection.with_host_key(fingerprint)
    stack.store.put(COLLECTION, connection_id, trusted.to_doc())
    log.info("%s: trusted the bastion's host key %s", connection.label, fingerprint)
    return trusted.to_dict()


def list_tables(stack: Stack, connection_id: str) -> list[dict[str, Any]]:
    with open_connection(stack, connection_id) as source:
        return source.list_tables()
