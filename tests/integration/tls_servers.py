"""Throwaway database servers that speak TLS only, with certificates the tests make themselves: a CA,
a server certificate for 127.0.0.1 / localhost, one for another host name, a client certificate and
an unrelated second CA (make_certificates); a PostgreSQL 15 cluster (start_postgres) and a MariaDB
(start_mariadb) started from the installed binaries in a private temporary folder, stopped and
removed after. The servers refuse plaintext TCP; each has a role that logs in over any TLS and one
that must present the client certificate. conftest.py turns these into session fixtures."""

import datetime
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from ipaddress import IPv4Address
from pathlib import Path

import pg8000.native
import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etlwizard.emulator import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
OTHER_HOST = "db.elsewhere.test"  # the name on the certificate that is not this server's
TRUST_ROLE = "etl_tls"  # logs in over any TLS connection, no password
CERT_ROLE = "etl_cert"  # must present the client certificate (its CN is this name)
# The rows of the `shop` table on both servers: (id, note, amount, updated_at)
SHOP_ROWS = [
    (1, "first order", Decimal("19.99"), datetime.datetime(2026, 11, 1, 9, 30, tzinfo=datetime.timezone.utc)),
    (2, "naïve café ☕", Decimal("0.00"), datetime.datetime(2026, 11, 2, 14, 5, 7, tzinfo=datetime.timezone.utc)),
    (3, None, Decimal("-1234.50"), datetime.datetime(2026, 11, 3, 23, 59, 59, tzinfo=datetime.timezone.utc)),
    (4, "O'Brien; DROP", Decimal("9999999999.99"), datetime.datetime(2026, 11, 4, 0, 0, tzinfo=datetime.timezone.utc)),
]
START_TIMEOUT = 60  # seconds


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A certificate and its private key: as files (mode 0600) and as PEM text."""

    cert_path: Path
    key_path: Path
    cert_pem: str
    key_pem: str


@dataclass(frozen=True)
class TlsCertificates:
    folder: Path  # mode 0700
    ca: Certificate  # signed the server, other_host and client certificates
    server: Certificate  # CN and SANs: 127.0.0.1, localhost
    other_host: Certificate  # signed by `ca` too, but for OTHER_HOST only: verify-full must refuse it
    client: Certificate  # CN=etl_cert, clientAuth
    other_ca: Certificate  # an unrelated CA: verifying a server against it must fail


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ETL Wizard tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    common_name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    names: list[x509.GeneralName] | None = None,
    usage: list[x509.ObjectIdentifier] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `common_name`, signed by `issuer` (self-signed when None); P-256 keys, quick to make."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer or (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(signer_cert.subject if signer_cert else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def _write(folder: Path, stem: str, made: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Certificate:
    cert, key = made
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    paths = folder / f"{stem}.crt", folder / f"{stem}.key"
    for path, text in zip(paths, (cert_pem, key_pem), strict=True):
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text)
    return Certificate(paths[0], paths[1], cert_pem, key_pem)


def make_certificates(folder: Path) -> TlsCertificates:
    """Every certificate the TLS tests need, written to `folder` (made private: 0700, files 0600)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca = _issue("ETL Wizard test CA", None, ca=True)
    server_names: list[x509.GeneralName] = [x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
    return TlsCertificates(
        folder=folder,
        ca=_write(folder, "ca", ca),
        server=_write(
            folder, "server", _issue("127.0.0.1", ca, names=server_names, usage=[ExtendedKeyUsageOID.SERVER_AUTH])
        ),
        other_host=_write(
            folder,
            "other_host",
            _issue(OTHER_HOST, ca, names=[x509.DNSName(OTHER_HOST)], usage=[ExtendedKeyUsageOID.SERVER_AUTH]),
        ),
        client=_write(folder, "client", _issue(CERT_ROLE, ca, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])),
        other_ca=_write(folder, "other_ca", _issue("Someone else's CA", None, ca=True)),
    )


# --- running the servers' binaries ---------------------------------------------------------------


def require_binary(path: str | Path, package: str) -> str:
    """The binary's path, or a failure (never a skip: CI runs every test) that says what to install."""
    found = shutil.which(str(path))
    if not found:
        raise RuntimeError(f"{path} is not installed: apt-get install {package}")
    return found


def _as_user(user: str) -> list[str]:
    """initdb and pg_ctl refuse to run as root: as root, run them as the server's own user."""
    return [require_binary("runuser", "util-linux"), "-u", user, "--"] if os.geteuid() == 0 else []


def _give(folder: Path, user: str) -> None:
    """As root, hand `folder` and everything in it to `user` (the server must own its files and key)."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            shutil.chown(name, user, user)


def _private_folder(prefix: str) -> Path:
    # Not under pytest's tmp_path: its parents are root's 0700 folders, which the server's user cannot enter.
    return Path(tempfile.mkdtemp(prefix=prefix))


def _run(command: list[str], log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")


def _install_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    target.chmod(0o600)
    return target


# --- PostgreSQL ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresTlsServer:
    host: str  # 127.0.0.1: the server certificate's name (also valid: localhost)
    port: int
    database: str  # shop
    trust_role: str  # etl_tls: hostssl trust
    cert_role: str  # etl_cert: hostssl cert (clientcert=verify-full), the client certificate's CN
    socket_dir: Path  # `local` connections (trust): the admin's, and a Unix-socket path as /cloudsql/... is
    superuser: str
    data_dir: Path

    def admin(self) -> pg8000.native.Connection:
        """The superuser over the Unix socket (sees every backend's pg_stat_ssl row)."""
        return pg8000.native.Connection(
            self.superuser, unix_sock=str(self.socket_dir / f".s.PGSQL.{self.port}"), database=self.database
        )

    @contextmanager
    def serving(self, certificate: Certificate) -> Iterator[None]:
        """Serve another certificate (e.g. the other host's) for the block; the usual one after."""
        self._swap(certificate)
        try:
            yield
        finally:
            self._swap(None)

    def _swap(self, certificate: Certificate | None) -> None:
        admin = self.admin()
        try:
            if certificate is None:
                admin.run("ALTER SYSTEM RESET ssl_cert_file")
                admin.run("ALTER SYSTEM RESET ssl_key_file")
                expected = (self.data_dir / "server.crt").read_text()
            else:
                # The server reads only files it can open (the key: its own, 0600): copies in its folder.
                _install_copy(certificate.cert_path, self.data_dir / "serving.crt")
                _install_copy(certificate.key_path, self.data_dir / "serving.key")
                _give(self.data_dir, "postgres")
                admin.run("ALTER SYSTEM SET ssl_cert_file = 'serving.crt'")
                admin.run("ALTER SYSTEM SET ssl_key_file = 'serving.key'")
                expected = certificate.cert_pem
            admin.run("SELECT pg_reload_conf()")
        finally:
            admin.close()
        # The postmaster reloads when it gets to the signal: wait until new connections get the certificate.
        want = ssl.PEM_cert_to_DER_cert(expected)
        deadline = time.monotonic() + 10
        while served_postgres_certificate(self.host, self.port) != want:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not switch its certificate within 10 s (see its log)")
            time.sleep(0.05)


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")


def served_postgres_certificate(host: str, port: int) -> bytes:
    """The certificate (DER) a PostgreSQL server presents: SSLRequest, then a handshake that checks nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        if raw.recv(1) != b"S":
            raise RuntimeError(f"{host}:{port} declined TLS")
        with context.wrap_socket(raw) as tls:
            served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


SHOP_POSTGRES = [
    "CREATE TABLE shop (id bigint PRIMARY KEY, note text, amount numeric(12,2), updated_at timestamptz NOT NULL)",
    f"GRANT SELECT ON shop TO {TRUST_ROLE}, {CERT_ROLE}",
]


@contextmanager
def start_postgres(certificates: TlsCertificates) -> Iterator[PostgresTlsServer]:
    """A PostgreSQL 15 cluster of its own: TLS only over TCP on a free loopback port, `shop` loaded."""
    initdb = require_binary(POSTGRES_BIN / "initdb", "postgresql-15")
    pg_ctl = require_binary(POSTGRES_BIN / "pg_ctl", "postgresql-15")
    folder = _private_folder("etl-tls-postgres-")
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    as_postgres = _as_user("postgres")
    port = free_port()
    try:
        sockets.mkdir(mode=0o700)
        _give(folder, "postgres")
        _run(as_postgres + [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        _install_copy(certificates.server.cert_path, data / "server.crt")
        _install_copy(certificates.server.key_path, data / "server.key")
        _install_copy(certificates.ca.cert_path, data / "ca.crt")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{_literal(sockets)}'\n"
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n"
                "fsync = off\nlog_connections = on\n"
            )
        # TCP: TLS only (no `host` line, so plaintext finds no entry). The socket: trust, for the setup.
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all {CERT_ROLE} 127.0.0.1/32 cert\n"
            f"hostssl all {TRUST_ROLE} 127.0.0.1/32 trust\n"
        )
        _give(folder, "postgres")
        server = PostgresTlsServer(
            host="127.0.0.1",
            port=port,
            database="shop",
            trust_role=TRUST_ROLE,
            cert_role=CERT_ROLE,
            socket_dir=sockets,
            superuser="postgres",
            data_dir=data,
        )
        try:  # stopped even when `pg_ctl start` gives up waiting on a postmaster that did start
            _run(as_postgres + [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT), "start"], log)
            admin = pg8000.native.Connection("postgres", unix_sock=str(sockets / f".s.PGSQL.{port}"))
            for role in (TRUST_ROLE, CERT_ROLE):
                admin.run(f"CREATE ROLE {role} LOGIN")
            admin.run("CREATE DATABASE shop")
            admin.close()
            shop = server.admin()
            for sql in SHOP_POSTGRES:
                shop.run(sql)
            for row in SHOP_ROWS:
                shop.run(
                    "INSERT INTO shop VALUES (:id, :note, :amount, :at)",
                    **dict(zip(("id", "note", "amount", "at"), row, strict=True)),
                )
            shop.close()
            yield server
        finally:
            subprocess.run(
                as_postgres + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- MariaDB -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MariadbTlsServer:
    host: str  # 127.0.0.1
    port: int
    database: str  # shop
    trust_role: str  # etl_tls: REQUIRE SSL, no password
    cert_role: str  # etl_cert: REQUIRE X509 (any certificate the CA signed), no password
    socket: Path  # root's way in (no password; the socket is not TCP, so not held to TLS)
    cert_path: Path  # the files the server reads (--ssl-cert, --ssl-key): `serving` swaps them
    key_path: Path

    def admin(self, database: str | None = "shop") -> pymysql.connections.Connection:
        return pymysql.connect(
            user="root", password="", unix_socket=str(self.socket), database=database, autocommit=True
        )

    @contextmanager
    def serving(self, certificate: Certificate) -> Iterator[None]:
        """Serve another certificate (e.g. the other host's) for the block; the usual one after."""
        usual = self.cert_path.read_text(), self.key_path.read_text()
        self._swap(certificate.cert_pem, certificate.key_pem)
        try:
            yield
        finally:
            self._swap(*usual)

    def _swap(self, cert_pem: str, key_pem: str) -> None:
        # Rewritten in place: the files keep their owner (the server's user) and mode 0600.
        self.cert_path.write_text(cert_pem)
        self.key_path.write_text(key_pem)
        admin = self.admin(None)
        try:
            with admin.cursor() as cursor:
                cursor.execute("FLUSH SSL")  # MariaDB >= 10.4: reload the certificate files now
        finally:
            admin.close()


SHOP_MARIADB = [
    "CREATE TABLE shop (id bigint PRIMARY KEY, note text, amount decimal(12,2), updated_at timestamp(6) NOT NULL)",
]


@contextmanager
def start_mariadb(certificates: TlsCertificates) -> Iterator[MariadbTlsServer]:
    """A MariaDB of its own: TCP only with TLS (require_secure_transport) on a free loopback port, `shop` loaded."""
    install_db = require_binary("mariadb-install-db", "mariadb-server")
    mariadbd = require_binary("mariadbd", "mariadb-server")
    folder = _private_folder("etl-tls-mariadb-")
    data, log, sock = folder / "data", folder / "error.log", folder / "mysqld.sock"
    user = "mysql" if os.geteuid() == 0 else None  # as root, the server drops to `mysql`
    port = free_port()
    process = None
    try:
        cert_path = _install_copy(certificates.server.cert_path, folder / "server.crt")
        key_path = _install_copy(certificates.server.key_path, folder / "server.key")
        ca_path = _install_copy(certificates.ca.cert_path, folder / "ca.crt")
        if user:
            _give(folder, user)
        # --no-defaults: the machine's /etc/mysql/my.cnf (port 3306, /run/mysqld) is the other server's.
        as_user = [f"--user={user}"] if user else []
        _run(
            [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"]
            + ["--skip-test-db", "--skip-name-resolve", *as_user]
        )
        command = [
            mariadbd,
            "--no-defaults",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={sock}",
            f"--pid-file={folder / 'mysqld.pid'}",
            f"--log-error={log}",
            f"--tmpdir={folder}",
            f"--ssl-ca={ca_path}",
            f"--ssl-cert={cert_path}",
            f"--ssl-key={key_path}",
            "--require-secure-transport=ON",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--innodb-flush-log-at-trx-commit=0",
            *as_user,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        server = MariadbTlsServer(
            host="127.0.0.1",
            port=port,
            database="shop",
            trust_role=TRUST_ROLE,
            cert_role=CERT_ROLE,
            socket=sock,
            cert_path=cert_path,
            key_path=key_path,
        )
        admin = _wait_for_mariadb(server, process, log)
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE shop CHARACTER SET utf8mb4")
            cursor.execute("USE shop")
            cursor.execute("SET time_zone = '+00:00'")
            for sql in SHOP_MARIADB:
                cursor.execute(sql)
            cursor.executemany(
                "INSERT INTO shop VALUES (%s, %s, %s, %s)",
                [(*row[:3], row[3].replace(tzinfo=None)) for row in SHOP_ROWS],
            )
            cursor.execute(f"CREATE USER {TRUST_ROLE}@'%' REQUIRE SSL")
            cursor.execute(f"CREATE USER {CERT_ROLE}@'%' REQUIRE X509")
            for role in (TRUST_ROLE, CERT_ROLE):
                cursor.execute(f"GRANT SELECT ON shop.* TO {role}@'%'")
        admin.close()
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_mariadb(
    server: MariadbTlsServer, process: subprocess.Popen[bytes], log: Path
) -> pymysql.connections.Connection:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({process.returncode}):\n{log.read_text(errors='replace')[-2000:]}")
        try:
            return server.admin(None)
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not answer within {START_TIMEOUT} s: see {log}") from None
            time.sleep(0.1)
