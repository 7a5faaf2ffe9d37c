"""PostgreSQL's TLS negotiation (sources/postgres.py does it for pg8000, with one TLS context per
process) against a fake server: TLS when the server offers it, plain when it declines, as pg8000's
own default did; the local test server has no TLS, so this is where the offered case is tried."""

import socket
import ssl
import subprocess
import threading

import pg8000.exceptions
import pytest

from etlwizard.sources.postgres import _negotiate_tls


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


def negotiate(address):
    return _negotiate_tls(socket.create_connection(address, timeout=5), "127.0.0.1")


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
        _negotiate_tls(sock, "127.0.0.1")
    sock.close()
