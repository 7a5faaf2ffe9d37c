"""PostgreSQL's TLS negotiation (sources/postgres.py does it for pg8000, as libpq's sslmode says)
against a scripted peer: prefer takes TLS when offered and plaintext when declined, require refuses
the decline, disable asks nothing. Real servers: test_connect_tls.py."""

import socket
import ssl
import subprocess
import threading

import pg8000.exceptions
import pytest

from etlwizard.errors import TlsFailed
from etlwizard.reach.options import TlsMode
from etlwizard.reach.tls import client_context
from etlwizard.sources.postgres import negotiate_tls


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate, as many servers have: accepted, like libpq's sslmode=prefer."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=db.example", "-days", "1"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True,
        capture_output=True,
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


def fake_server(answer: bytes, certificate=None):
    """Answers one SSLRequest with `answer`; then (over TLS after b"S") echoes what it is sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def serve():
        conn, _ = listener.accept()
        received.append(conn.recv(8))
        conn.sendall(answer)
        if answer == b"S":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            conn = context.wrap_socket(conn, server_side=True)
        conn.sendall(conn.recv(5))
        conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname(), received


def negotiate(address, level=TlsMode.PREFER):
    sock = socket.create_connection(address, timeout=5)
    return negotiate_tls(sock, "127.0.0.1", level, client_context(level, "", None))


def test_tls_when_the_server_offers_it(certificate):
    address, received = fake_server(b"S", certificate)
    sock = negotiate(address)
    assert isinstance(sock, ssl.SSLSocket)
    sock.sendall(b"hello")
    assert sock.recv(5) == b"hello"
    sock.close()
    assert received == [bytes.fromhex("0000000804d2162f")]  # PostgreSQL's SSLRequest: length 8, 80877103


def test_plain_when_the_server_declines():
    address, _ = fake_server(b"N")
    sock = negotiate(address)
    assert not isinstance(sock, ssl.SSLSocket)
    sock.sendall(b"plain")
    assert sock.recv(5) == b"plain"
    sock.close()


def test_any_other_answer_is_a_protocol_error():
    address, _ = fake_server(b"E")
    sock = socket.create_connection(address, timeout=5)
    with pytest.raises(pg8000.exceptions.InterfaceError, match="answered a TLS request with b'E'"):
        negotiate_tls(sock, "127.0.0.1", TlsMode.PREFER, client_context(TlsMode.PREFER, "", None))
    sock.close()


def test_require_refuses_a_server_that_declines():
    address, _ = fake_server(b"N")
    with pytest.raises(TlsFailed, match="does not offer TLS"):
        negotiate(address, TlsMode.REQUIRE)


def test_disable_asks_for_nothing():
    address, received = fake_server(b"N")
    sock = negotiate(address, TlsMode.DISABLE)
    sock.sendall(b"12345678")  # the peer reads its 8 bytes: this, not an SSLRequest
    assert sock.recv(1) == b"N"  # its answer: it has read them
    sock.close()
    assert received == [b"12345678"]
