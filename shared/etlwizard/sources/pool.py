"""Catalog connections (pg8000's, pymysql's) kept open and shared, a bounded number per saved connection.

Why: a preview opened a connection of its own (TCP, TLS negotiation, authentication) and closed it,
so fifty users at once meant fifty server backends and as many set-ups. A pool keeps up to
Settings.pool_size connections per saved connection and lends one for a single statement at a
time: a run holding its source for minutes holds no pooled connection between its catalog
queries (its reads and window statistics run on connections of their own), so runs cannot starve
previews.

A connection goes back to the pool only after a statement that ended normally, or with an error
the server reported on a session that goes on; any other failure discards it. An idle one the
server has closed meanwhile (pg_terminate_backend, KILL, a restart) is discarded when next taken.
"""

import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import PoolExhausted
from ..model import Connection
from ..reach.options import Credentials

# An idle connection older than this is closed, not lent, when the pool is next used: a firewall or
# proxy may drop a quiet connection without telling either end, and a reconnect after a minute's
# quiet is cheap.
IDLE_SECONDS = 60.0


@dataclass
class Pooled:
    db: Any  # a DB-API connection
    fileno: int  # its socket, watched while idle
    idle_since: float = field(default_factory=time.monotonic)


class ConnectionPool:
    """At most `size` connections lent at once; a taker finding none free waits up to `wait_seconds`."""

    def __init__(self, label: str, size: int, wait_seconds: float):
        self.label = label
        self.size = size
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Pooled] = []  # in the order given back: the last is lent first, the first age out
        self._lock = threading.Lock()
        self._closed = False

    def take(self, connect: Callable[[], Pooled]) -> Pooled:
        """An idle connection that is still open, or a new one from connect(); give() it back."""
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise PoolExhausted(
                f"{self.label}: all {self.size} connections to the database stayed busy for "
                f"{self.wait_seconds:g} s; try again in a moment"
            )
        try:
            while True:
                pooled, stale = self._pop_idle()
                for old in stale:
                    _close(old.db)
                if pooled is None:
                    return connect()
                if not _closed_by_server(pooled.fileno):
                    return pooled
                _close(pooled.db)
        except BaseException:
            self._slots.release()
            raise

    def give(self, pooled: Pooled, healthy: bool) -> None:
        """Back into the pool, or closed when the statement left its session in doubt."""
        try:
            with self._lock:
                keep = healthy and not self._closed
                if keep:
                    pooled.idle_since = time.monotonic()
                    self._idle.append(pooled)
            if not keep:
                _close(pooled.db)
        finally:
            self._slots.release()

    def _pop_idle(self) -> tuple[Pooled | None, list[Pooled]]:
        """The idle connection returned last, and those idle too long, taken out to be closed: after
        a burst, the connections it opened close as the pool goes on with fewer."""
        with self._lock:
            now = time.monotonic()
            stale = [p for p in self._idle if now - p.idle_since >= IDLE_SECONDS]
            self._idle = [p for p in self._idle if now - p.idle_since < IDLE_SECONDS]
            return (self._idle.pop() if self._idle else None), stale

    def close(self) -> None:
        """Close the idle connections now, and those lent out when they are given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for pooled in idle:
            _close(pooled.db)


class SourcePools:
    """One process's pools, one per saved connection, made on first use (Stack.pools).

    A pool keeps the connection's credentials for as long as it lives, to open its next connection
    without reading the secret store on every request."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pools: dict[str, tuple[Connection, Credentials, ConnectionPool]] = {}
        self._lock = threading.Lock()

    def get(
        self, connection: Connection, read_credentials: Callable[[], Credentials]
    ) -> tuple[Credentials, ConnectionPool]:
        """(credentials, pool) for a saved connection."""
        with self._lock:
            found = self._pools.get(connection.id)
            if found is not None and found[0] == connection:
                return found[1], found[2]
        credentials = read_credentials()  # outside the lock: Secret Manager takes a network round trip
        pool = ConnectionPool(connection.label, self.settings.pool_size, self.settings.connect_timeout)
        with self._lock:
            found = self._pools.get(connection.id)
            if found is not None and found[0] == connection:  # another thread made it meanwhile
                return found[1], found[2]
            self._pools[connection.id] = (connection, credentials, pool)
        if found is not None:
            found[2].close()
        return credentials, pool

    def drop(self, connection_id: str) -> None:
        """Close a deleted connection's pool."""
        with self._lock:
            found = self._pools.pop(connection_id, None)
        if found is not None:
            found[2].close()

    def close(self) -> None:
        """Close every pool (the process, or a test's stack, is done with them)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for _, _, pool in pools:
            pool.close()


def _closed_by_server(fileno: int) -> bool:
    """Whether an idle connection's socket has something to read: the server has closed it (end of
    file) or said why before closing (PostgreSQL's FATAL on pg_terminate_backend). An idle session
    hears nothing otherwise."""
    poller = select.poll()  # not select(): socket numbers past 1023 are fine
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


def _close(db: Any) -> None:
    try:
        db.close()
    except Exception:  # closing a connection the server already closed
        pass
