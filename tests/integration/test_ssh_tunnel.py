"""The product's SSH tunnel (etlwizard.reach.ssh) through the tests' bastion (ssh_bastion.py): the
drivers reach PostgreSQL and MariaDB through it and the databases see sshd's connection; the host
key is checked against the confirmed fingerprint before the client key is ever offered; every
refusal is an EtlError that says what to do and never holds the key or its passphrase; and a closed
tunnel leaves nothing listening and no thread running."""

import logging
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pg8000.dbapi
import pymysql
import pytest

from etlwizard.emulator import free_port
from etlwizard.errors import HostKeyChanged, HostKeyUnconfirmed, SourceAuthError, SshFailed
from etlwizard.reach.ssh import SshTunnel, presented_host_key

POSTGRES = ("127.0.0.1", 5432)
MARIADB = ("127.0.0.1", 3306)
TIMEOUT = 5.0
PASSPHRASE = "correct horse battery staple 14"


def tunnel(bastion, *, key=None, private_key=None, passphrase="", host_key=None, port=None, target=POSTGRES, **more):
    """A tunnel as a saved connection would describe it: the bastion's confirmed key and ed25519 client key."""
    return SshTunnel(
        host=more.pop("host", bastion.host),
        port=port or bastion.port,
        user=bastion.user,
        private_key=private_key if private_key is not None else (key or bastion.key).private_key,
        passphrase=passphrase,
        host_key=bastion.host_key_fingerprint if host_key is None else host_key,
        target_host=target[0],
        target_port=target[1],
        timeout=more.pop("timeout", TIMEOUT),
    )


def postgres(port):
    return pg8000.dbapi.connect(
        host="127.0.0.1", port=port, user="postgres", database="test", ssl_context=False, timeout=10
    )


def query(db, sql):
    cursor = db.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def refused(port) -> bool:
    """Whether a TCP connection to 127.0.0.1:port is refused (nothing listens there any more)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


_BEFORE: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def threads_before():
    """The threads other tests left (a browser test's event loop has resolver threads too)."""
    _BEFORE.clear()
    _BEFORE.update(threading.enumerate())


def tunnel_threads():
    """The tunnels' threads: their loops', and their resolvers' (asyncio_N) started since the test began."""
    named = ("ssh-tunnel", "ssh-host-key", "asyncio_")
    return [t for t in threading.enumerate() if t.name.startswith(named) and t not in _BEFORE]


def key_lines(private_key):
    """The lines of a private key that are secret: its base64 body, and any encryption header."""
    return [line for line in private_key.splitlines() if line and not line.startswith("-----")]


class SshdLog:
    """What sshd logged since the mark: to see whether a client key was offered at all."""

    def __init__(self, bastion):
        self.path = bastion.log
        self.start = len(self.path.read_bytes())

    def since(self, settle=0.3) -> str:
        time.sleep(settle)  # sshd logs the end of a connection shortly after the client has gone
        return self.path.read_bytes()[self.start :].decode(errors="replace")


@pytest.fixture(scope="module")
def passphrase_keys(ssh_bastion, tmp_path_factory):
    """Client keys protected by PASSPHRASE, as ssh-keygen makes them (ed25519 in OpenSSH's format, RSA
    in encrypted PEM), authorized on the bastion."""
    folder = tmp_path_factory.mktemp("passphrase_keys")
    keys = {}
    for kind, options in {"ed25519": ["-t", "ed25519"], "rsa": ["-t", "rsa", "-b", "2048", "-m", "PEM"]}.items():
        path = folder / f"client_{kind}"
        subprocess.run(
            ["ssh-keygen", "-q", *options, "-N", PASSPHRASE, "-C", f"etl-wizard-test-{kind}", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        ssh_bastion.authorize(path.with_suffix(".pub").read_text())
        keys[kind] = path.read_text()
    return keys


# --- through the bastion ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["key", "rsa_key"])
def test_postgres_through_the_tunnel_arrives_from_the_bastion(ssh_bastion, key):
    with tunnel(ssh_bastion, key=getattr(ssh_bastion, key)) as ssh:
        db = postgres(ssh.open())
        try:
            [[database, client_port]] = query(db, "SELECT current_database(), inet_client_port()")
            through_the_bastion = ssh_bastion.forwards(client_port, POSTGRES[1])  # asked while connected
        finally:
            db.close()
    assert database == "test"
    assert through_the_bastion


def test_mariadb_through_the_tunnel_arrives_from_the_bastion(ssh_bastion):
    with tunnel(ssh_bastion, target=MARIADB) as ssh:
        db = pymysql.connect(
            host="127.0.0.1", port=ssh.open(), user="root", password="", ssl_disabled=True, connect_timeout=10
        )
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT 6 * 7, HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
                [(answer, host)] = cursor.fetchall()
            client_port = int(host.rsplit(":", 1)[1])
            through_the_bastion = ssh_bastion.forwards(client_port, MARIADB[1])
        finally:
            db.close()
    assert answer == 42
    assert through_the_bastion


def test_many_connections_share_one_tunnel_at_once(ssh_bastion):
    """A run holds the catalog pool, the bulk reader and the row path open together."""
    with tunnel(ssh_bastion) as ssh:
        port = ssh.open()
        assert ssh.open() == port  # a second open is the same tunnel
        with ThreadPoolExecutor(8) as pool:
            connections = list(pool.map(lambda _: postgres(port), range(8)))
        try:
            seen = [query(db, "SELECT pg_backend_pid(), inet_client_port()")[0] for db in connections]
            through_the_bastion = [ssh_bastion.forwards(client_port, POSTGRES[1]) for _, client_port in seen]
        finally:
            for db in connections:
                db.close()
    assert len({pid for pid, _ in seen}) == 8  # eight sessions open at the same time
    assert all(through_the_bastion)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_passphrase_protected_key_works(ssh_bastion, passphrase_keys, kind):
    with tunnel(ssh_bastion, private_key=passphrase_keys[kind], passphrase=PASSPHRASE) as ssh:
        db = postgres(ssh.open())
        try:
            [[client_port]] = query(db, "SELECT inet_client_port()")
            assert ssh_bastion.forwards(client_port, POSTGRES[1])
        finally:
            db.close()


@pytest.mark.parametrize("passphrase", ["not the passphrase", ""])
def test_a_wrong_or_missing_passphrase_is_refused(ssh_bastion, passphrase_keys, passphrase):
    with pytest.raises(SourceAuthError) as error:
        tunnel(ssh_bastion, private_key=passphrase_keys["ed25519"], passphrase=passphrase).open()
    assert error.value.status == 401 and not error.value.transient
    assert f"SSH private key for 127.0.0.1:{ssh_bastion.port} cannot be used" in error.value.message
    assert not tunnel_threads()


# --- the bastion's host key ------------------------------------------------------------------------


def test_an_unconfirmed_host_key_is_shown_and_the_key_is_not_offered(ssh_bastion):
    sshd = SshdLog(ssh_bastion)
    with pytest.raises(HostKeyUnconfirmed) as error:
        tunnel(ssh_bastion, host_key="").open()
    bastion = f"127.0.0.1:{ssh_bastion.port}"
    assert error.value.fingerprint == ssh_bastion.host_key_fingerprint  # what ssh-keygen -l says of it
    assert error.value.message == (
        f"the SSH bastion {bastion} presents host key {ssh_bastion.host_key_fingerprint}; "
        "confirm it is the bastion's before connecting through it"
    )
    assert error.value.status == 409
    assert presented_host_key("127.0.0.1", ssh_bastion.port, TIMEOUT) == ssh_bastion.host_key_fingerprint
    said = sshd.since()
    assert "Connection from 127.0.0.1" in said  # the bastion was asked...
    assert ssh_bastion.key.fingerprint not in said and "publickey" not in said  # ...but no key was offered
    assert not tunnel_threads()


def test_a_changed_host_key_is_refused_naming_both_keys(ssh_bastion):
    """The key confirmed is another one (as if the bastion had been rebuilt, or a machine were in between)."""
    sshd = SshdLog(ssh_bastion)
    confirmed = ssh_bastion.wrong_key.fingerprint
    with pytest.raises(HostKeyChanged) as error:
        tunnel(ssh_bastion, host_key=confirmed).open()
    message = error.value.message
    assert ssh_bastion.host_key_fingerprint in message and confirmed in message
    assert "rebuilt" in message and "in between" in message
    assert not error.value.transient  # a retry would meet the same key
    said = sshd.since()
    assert ssh_bastion.key.fingerprint not in said and "publickey" not in said
    assert not tunnel_threads()


# --- refusals and failures -------------------------------------------------------------------------


def test_a_key_the_bastion_does_not_know_is_refused(ssh_bastion):
    with pytest.raises(SourceAuthError) as error:
        tunnel(ssh_bastion, key=ssh_bastion.wrong_key).open()
    assert error.value.status == 401
    assert error.value.message == (
        f"the SSH bastion 127.0.0.1:{ssh_bastion.port} refused user '{ssh_bastion.user}' with this key"
    )
    assert not tunnel_threads()


def test_an_unreachable_bastion_fails_within_the_timeout(ssh_bastion):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SshFailed) as error:
        tunnel(ssh_bastion, port=port, timeout=3).open()
    assert time.monotonic() - started < 3 + 2
    assert error.value.status == 502 and error.value.transient
    assert f"cannot reach the SSH bastion 127.0.0.1:{port}" in error.value.message
    with pytest.raises(SshFailed):
        presented_host_key("127.0.0.1", port, 3)
    assert not tunnel_threads()


def test_a_bastion_that_never_answers_fails_within_the_timeout(ssh_bastion):
    """A port that accepts the TCP connection and then says nothing (a firewall, a hung machine)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        for attempt in (
            lambda: tunnel(ssh_bastion, port=port, timeout=2).open(),
            lambda: presented_host_key("127.0.0.1", port, 2),
        ):
            started = time.monotonic()
            with pytest.raises(SshFailed) as error:
                attempt()
            assert time.monotonic() - started < 2 + 2
            assert error.value.message == f"the SSH bastion 127.0.0.1:{port} did not answer within 2 s"
    assert not tunnel_threads()


def test_a_database_the_bastion_cannot_reach_is_named(ssh_bastion):
    target = ("127.0.0.1", free_port())  # nothing listens there, on the bastion's side
    with pytest.raises(SshFailed) as error:
        tunnel(ssh_bastion, target=target).open()
    message = error.value.message
    assert f"the SSH bastion 127.0.0.1:{ssh_bastion.port} cannot reach the database at 127.0.0.1:{target[1]}" in message
    assert not tunnel_threads()


def test_no_message_or_log_holds_the_key_or_its_passphrase(ssh_bastion, passphrase_keys, caplog):
    caplog.set_level(logging.DEBUG)
    private_key = passphrase_keys["rsa"]  # encrypted PEM
    header, *_, footer = ssh_bastion.key.private_key.splitlines()  # (no key header written out in the tree)
    not_a_key = f"{header}\nbm90IGEga2V5\n{footer}\n"
    failures = [
        tunnel(ssh_bastion, private_key=private_key, passphrase="not " + PASSPHRASE),
        tunnel(ssh_bastion, private_key=private_key, passphrase=PASSPHRASE, host_key=""),
        tunnel(ssh_bastion, private_key=private_key, passphrase=PASSPHRASE, host_key=ssh_bastion.wrong_key.fingerprint),
        tunnel(ssh_bastion, private_key=private_key, passphrase=PASSPHRASE, target=("127.0.0.1", free_port())),
        tunnel(ssh_bastion, private_key=ssh_bastion.wrong_key.private_key),
        tunnel(ssh_bastion, private_key=not_a_key),
    ]
    said = []
    for failing in failures:
        said.append(repr(failing))
        with pytest.raises((SshFailed, SourceAuthError)) as error:
            failing.open()
        said.append(error.value.message)
        said.append(str(error.value))
    with tunnel(ssh_bastion, private_key=private_key, passphrase=PASSPHRASE) as ssh:
        postgres(ssh.open()).close()
        said.append(repr(ssh))
    said += [record.getMessage() for record in caplog.records]
    text = "\n".join(said)
    assert any("refused user" in line for line in said)  # the failures were the ones meant
    assert PASSPHRASE not in text
    for secret in [private_key, ssh_bastion.wrong_key.private_key, "bm90IGEga2V5"]:
        assert not any(line in text for line in key_lines(secret))


# --- closing ---------------------------------------------------------------------------------------


def test_a_closed_tunnel_leaves_nothing_open(ssh_bastion):
    before = set(threading.enumerate())
    ssh = tunnel(ssh_bastion, host="localhost")  # a name: the loop resolves it on a thread of its own
    port = ssh.open()
    db = postgres(port)
    assert tunnel_threads()
    ssh.close()
    assert refused(port)
    assert not tunnel_threads() and set(threading.enumerate()) <= before
    with pytest.raises(pg8000.dbapi.InterfaceError):  # the forwarded connection was cut, not left dangling
        query(db, "SELECT 1")
    ssh.close()  # a second close is fine
    assert ssh.open() != 0  # and the tunnel can be opened again, as a new one
    ssh.close()
    assert not tunnel_threads()


def test_an_exception_inside_with_closes_the_tunnel(ssh_bastion):
    ports = []
    with pytest.raises(RuntimeError, match="the run failed"), tunnel(ssh_bastion) as ssh:
        ports.append(ssh.open())
        raise RuntimeError("the run failed")
    assert refused(ports[0])
    assert not tunnel_threads()
