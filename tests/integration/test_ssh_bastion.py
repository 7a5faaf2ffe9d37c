"""The tests' SSH bastion (ssh_bastion.py) does what issue 14's tunnels need: a local forward over
it reaches the test PostgreSQL and MariaDB, which see the connection arrive from the bastion's sshd;
a wrong client key, a changed host key and a port where no bastion listens are each refused, quickly.
The forwards are opened with the `ssh` binary here; the product's own tunnels come next."""

import time

import pg8000.native
import pymysql
import pytest

from etlwizard.emulator import free_port
from tests.integration.ssh_bastion import ForwardFailed, ssh_forward

POSTGRES = ("127.0.0.1", 5432)
MARIADB = ("127.0.0.1", 3306)


@pytest.fixture
def known_hosts(tmp_path, ssh_bastion):
    """A known_hosts file that pins the bastion's host key, and nothing else."""
    path = tmp_path / "known_hosts"
    path.write_text(ssh_bastion.known_hosts_line())
    return path


def test_the_bastion_gives_what_a_connection_needs(ssh_bastion):
    assert ssh_bastion.host == "127.0.0.1" and ssh_bastion.port > 0 and ssh_bastion.user
    assert ssh_bastion.host_key_fingerprint.startswith("SHA256:")
    assert ssh_bastion.host_public_key.startswith("ssh-ed25519 ")
    assert ssh_bastion.key.private_key.splitlines()[0].endswith(" OPENSSH PRIVATE KEY-----")  # made, not stored
    assert ssh_bastion.rsa_key.private_key.splitlines()[0].endswith(" RSA PRIVATE KEY-----")
    assert ssh_bastion.key.path.read_text() == ssh_bastion.key.private_key
    assert len({ssh_bastion.key.fingerprint, ssh_bastion.rsa_key.fingerprint, ssh_bastion.wrong_key.fingerprint}) == 3


@pytest.mark.parametrize("key", ["key", "rsa_key"])
def test_postgres_through_the_bastion_sees_the_bastion(ssh_bastion, known_hosts, key):
    with ssh_forward(ssh_bastion, POSTGRES, known_hosts, key=getattr(ssh_bastion, key)) as port:
        db = pg8000.native.Connection(host="127.0.0.1", port=port, user="postgres", database="postgres", timeout=10)
        try:
            [[addr, client_port]] = db.run(
                "SELECT host(client_addr), client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            )
            # The connection PostgreSQL sees is the bastion's sshd's, not the test's (asked while open).
            through_the_bastion = ssh_bastion.forwards(client_port, POSTGRES[1])
        finally:
            db.close()
    assert addr == "127.0.0.1"
    assert through_the_bastion


def test_a_direct_connection_is_not_the_bastions(ssh_bastion):
    """The check above can say no: the test's own connection to PostgreSQL is not sshd's."""
    db = pg8000.native.Connection(host="127.0.0.1", port=5432, user="postgres", database="postgres", timeout=10)
    try:
        [[client_port]] = db.run("SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        assert not ssh_bastion.forwards(client_port, POSTGRES[1])
    finally:
        db.close()


def test_mariadb_through_the_bastion_sees_the_bastion(ssh_bastion, known_hosts):
    with ssh_forward(ssh_bastion, MARIADB, known_hosts) as port:
        db = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", connect_timeout=10, read_timeout=10)
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
                [(host,)] = cursor.fetchall()
            seen_host, client_port = host.rsplit(":", 1)
            through_the_bastion = ssh_bastion.forwards(int(client_port), MARIADB[1])
        finally:
            db.close()
    assert seen_host in ("127.0.0.1", "localhost")
    assert through_the_bastion


def refusal(bastion, known_hosts, **options) -> tuple[str, float]:
    """Try a forward that must fail: what ssh said, and how long it took to say it."""
    started = time.monotonic()
    with pytest.raises(ForwardFailed) as refused, ssh_forward(bastion, POSTGRES, known_hosts, **options):
        pass
    return str(refused.value), time.monotonic() - started


def test_a_key_the_bastion_does_not_know_is_refused(ssh_bastion, known_hosts):
    said, seconds = refusal(ssh_bastion, known_hosts, key=ssh_bastion.wrong_key)
    assert "Permission denied (publickey)" in said
    assert seconds < 5


def test_a_changed_host_key_is_refused(ssh_bastion, tmp_path):
    """The known_hosts file pins another key for the bastion's address: as if the bastion changed."""
    other = tmp_path / "known_hosts"
    other.write_text(ssh_bastion.known_hosts_line(ssh_bastion.wrong_key.public_key))
    said, seconds = refusal(ssh_bastion, other)
    assert "Host key verification failed" in said
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in said
    assert ssh_bastion.host_key_fingerprint in said  # ssh names the key it was offered
    assert seconds < 5


def test_an_unreachable_bastion_fails_fast(ssh_bastion, known_hosts):
    said, seconds = refusal(ssh_bastion, known_hosts, port=free_port())
    assert "Connection refused" in said
    assert seconds < 5
