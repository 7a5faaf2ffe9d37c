"""The TLS test servers (tls_servers.py) are what issue 14's tests need, checked with the plain drivers:
TLS connections work and the server itself says they are encrypted; plaintext is refused; the
client-certificate user is refused without one; a server is not trusted against the wrong CA; and
a certificate for another host name fails the hostname check (and only that check)."""

import ssl

import pg8000.exceptions
import pg8000.native
import pymysql
import pytest

from tests.integration.tls_servers import OTHER_HOST, SHOP_ROWS


def tls_context(ca, client=None, check_hostname=True) -> ssl.SSLContext:
    """What libpq's verify-full (verify-ca without the hostname check) does, as an ssl.SSLContext."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.check_hostname = check_hostname
    if client:
        context.load_cert_chain(str(client.cert_path), str(client.key_path))
    return context


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_connect(server, user, context):
    return pg8000.native.Connection(
        user, host=server.host, port=server.port, database=server.database, ssl_context=context, timeout=10
    )


def pg_ssl_row(db):
    """The server's own view of this connection: (ssl, version, client_dn) from pg_stat_ssl."""
    [row] = db.run("SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    return tuple(row)


def test_postgres_verify_full_connects_encrypted_and_reads_the_shop(tls_postgres, tls_certificates):
    db = pg_connect(tls_postgres, tls_postgres.trust_role, tls_context(tls_certificates.ca))
    try:
        assert pg_ssl_row(db)[:2] == (True, "TLSv1.3")
        assert [tuple(r) for r in db.run("SELECT * FROM shop ORDER BY id")] == SHOP_ROWS
    finally:
        db.close()


def test_postgres_cert_role_logs_in_with_the_client_certificate(tls_postgres, tls_certificates):
    context = tls_context(tls_certificates.ca, tls_certificates.client)
    db = pg_connect(tls_postgres, tls_postgres.cert_role, context)
    try:
        ssl_on, _, client_dn = pg_ssl_row(db)
        assert ssl_on and f"CN={tls_postgres.cert_role}" in client_dn
        assert db.run("SELECT count(*) FROM shop") == [[len(SHOP_ROWS)]]
    finally:
        db.close()


def test_postgres_refuses_plaintext(tls_postgres):
    with pytest.raises(pg8000.exceptions.DatabaseError, match="no encryption"):
        pg_connect(tls_postgres, tls_postgres.trust_role, False)  # False: no TLS at all


def test_postgres_cert_role_refused_without_a_client_certificate(tls_postgres, tls_certificates):
    with pytest.raises(pg8000.exceptions.DatabaseError, match="certificate"):
        pg_connect(tls_postgres, tls_postgres.cert_role, tls_context(tls_certificates.ca))


def test_postgres_not_trusted_against_another_ca(tls_postgres, tls_certificates):
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        pg_connect(tls_postgres, tls_postgres.trust_role, tls_context(tls_certificates.other_ca))


def test_postgres_other_host_certificate_fails_only_the_hostname_check(tls_postgres, tls_certificates):
    with tls_postgres.serving(tls_certificates.other_host):
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            pg_connect(tls_postgres, tls_postgres.trust_role, tls_context(tls_certificates.ca))
        db = pg_connect(tls_postgres, tls_postgres.trust_role, tls_context(tls_certificates.ca, check_hostname=False))
        db.close()
    # and the usual certificate again afterwards, for the rest of the session
    pg_connect(tls_postgres, tls_postgres.trust_role, tls_context(tls_certificates.ca)).close()
    assert OTHER_HOST not in tls_certificates.server.cert_pem


# --- MariaDB -------------------------------------------------------------------------------------


def maria_connect(server, user, tls):
    """tls: pymysql's ssl= dict, or None for plaintext (not pymysql's default of trying TLS first)."""
    return pymysql.connect(
        host=server.host,
        port=server.port,
        user=user,
        password="",
        database=server.database,
        ssl=tls,
        ssl_disabled=tls is None,
        connect_timeout=10,
    )


def maria_tls(ca, client=None, check_hostname=True):
    """pymysql's ssl= for verify-identity (verify-ca without the hostname check)."""
    tls = {"ca": str(ca.cert_path), "check_hostname": check_hostname}
    if client:
        tls |= {"cert": str(client.cert_path), "key": str(client.key_path)}
    return tls


def maria_cipher(db):
    with db.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cursor.fetchone()[1]


def test_mariadb_verify_identity_connects_encrypted_and_reads_the_shop(tls_mariadb, tls_certificates):
    db = maria_connect(tls_mariadb, tls_mariadb.trust_role, maria_tls(tls_certificates.ca))
    try:
        assert maria_cipher(db)
        with db.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute("SELECT id, note, amount, updated_at FROM shop ORDER BY id")
            rows = cursor.fetchall()
        assert list(rows) == [(*row[:3], row[3].replace(tzinfo=None)) for row in SHOP_ROWS]
    finally:
        db.close()


def test_mariadb_x509_user_logs_in_with_the_client_certificate(tls_mariadb, tls_certificates):
    db = maria_connect(tls_mariadb, tls_mariadb.cert_role, maria_tls(tls_certificates.ca, tls_certificates.client))
    try:
        assert maria_cipher(db)
    finally:
        db.close()


def test_mariadb_refuses_plaintext(tls_mariadb):
    with pytest.raises(pymysql.err.OperationalError) as refused:
        maria_connect(tls_mariadb, tls_mariadb.trust_role, None)
    assert refused.value.args[0] == 1045, refused.value  # MariaDB says "Access denied" for either reason
    # refused for every user over TCP, not only for those created REQUIRE SSL:
    admin = tls_mariadb.admin()
    with admin.cursor() as cursor:
        cursor.execute("SELECT @@require_secure_transport")
        assert cursor.fetchone() == (1,)
    admin.close()


def test_mariadb_x509_user_refused_without_a_client_certificate(tls_mariadb, tls_certificates):
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        maria_connect(tls_mariadb, tls_mariadb.cert_role, maria_tls(tls_certificates.ca))


def test_mariadb_not_trusted_against_another_ca(tls_mariadb, tls_certificates):
    with pytest.raises(pymysql.err.OperationalError, match="certificate verify failed"):
        maria_connect(tls_mariadb, tls_mariadb.trust_role, maria_tls(tls_certificates.other_ca))


def test_mariadb_other_host_certificate_fails_only_the_hostname_check(tls_mariadb, tls_certificates):
    with tls_mariadb.serving(tls_certificates.other_host):
        with pytest.raises(pymysql.err.OperationalError, match="IP address mismatch"):
            maria_connect(tls_mariadb, tls_mariadb.trust_role, maria_tls(tls_certificates.ca))
        maria_connect(tls_mariadb, tls_mariadb.trust_role, maria_tls(tls_certificates.ca, check_hostname=False)).close()
    maria_connect(tls_mariadb, tls_mariadb.trust_role, maria_tls(tls_certificates.ca)).close()


# --- the certificates ----------------------------------------------------------------------------


def test_certificates_are_private(tls_certificates):
    assert tls_certificates.folder.stat().st_mode & 0o777 == 0o700
    for made in (tls_certificates.ca, tls_certificates.server, tls_certificates.client, tls_certificates.other_ca):
        for path in (made.cert_path, made.key_path):
            assert path.stat().st_mode & 0o777 == 0o600, path
        assert path.read_text() == made.key_pem
