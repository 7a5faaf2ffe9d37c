"""How a connection's security and network options are read from a request: the defaults a user
gets, what is refused (naming the field), where each secret goes, and how the result is shown."""

import json

import pytest

from etlwizard.errors import InvalidInput
from etlwizard.model import Connection
from etlwizard.reach.options import Credentials, TlsMode
from tests.integration.ssh_bastion import make_key
from tests.integration.tls_servers import make_certificates

PG = {"name": "orders", "type": "postgresql", "host": "db.example.com", "database": "shop", "user": "etl"}
MY = {**PG, "type": "mysql"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls") / "certs")


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("ssh") / "id_ed25519")


def refused(body, field, problem=""):
    with pytest.raises(InvalidInput) as err:
        Connection.from_payload(body)
    assert err.value.field == field, err.value.message
    assert problem in err.value.message
    return err.value.message


@pytest.mark.parametrize(
    "body, mode",
    [
        (PG, "require"),  # a remote server: encrypted, whatever it presents
        (MY, "required"),
        ({**PG, "host": "127.0.0.1"}, "disable"),  # the traffic never leaves the machine
        ({**MY, "host": "localhost"}, "disabled"),
        ({**PG, "host": "::1"}, "disable"),
    ],
)
def test_default_modes(body, mode):
    assert Connection.from_payload(body)[0].tls.mode == mode


def test_a_ca_makes_the_default_verify_full(certs):
    for body, mode in ((PG, "verify-full"), (MY, "verify-identity")):
        connection, _ = Connection.from_payload({**body, "tls_ca": certs.ca.cert_pem})
        assert connection.tls.mode == mode and connection.tls.level(body["type"]) == TlsMode.VERIFY_FULL
        assert connection.tls.ca == certs.ca.cert_pem  # public: kept with the connection
        assert connection.to_dict()["tls"] == {"mode": mode, "ca": True, "client_certificate": False}


def test_each_engine_takes_its_own_mode_names():
    assert Connection.from_payload({**MY, "tls_mode": "verify-identity"})[0].tls.mode == "verify-identity"
    refused({**MY, "tls_mode": "verify-full"}, "tls_mode", "must be disabled, preferred, required")
    refused({**PG, "tls_mode": "verify-identity"}, "tls_mode", "must be disable, prefer, require")


def test_certificates_are_checked(certs):
    refused({**PG, "tls_ca": "not a certificate"}, "tls_ca", "PEM")
    refused({**PG, "tls_ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "tls_ca")
    refused({**PG, "tls_client_cert": certs.client.cert_pem}, "tls_client_key", "needs its key")
    refused({**PG, "tls_client_key": certs.client.key_pem}, "tls_client_cert", "needs its key")
    message = refused(
        {**PG, "tls_client_cert": certs.client.cert_pem, "tls_client_key": certs.server.key_pem},
        "tls_client_key",
        "does not belong to the client certificate",
    )
    assert certs.server.key_pem.splitlines()[1] not in message
    refused(
        {**PG, "tls_mode": "disable", "tls_client_cert": certs.client.cert_pem, "tls_client_key": certs.client.key_pem},
        "tls_mode",
        "sends no client certificate",
    )


def test_client_certificate_and_key_go_to_the_secrets_only(certs):
    body = {**PG, "password": "pw", "tls_client_cert": certs.client.cert_pem, "tls_client_key": certs.client.key_pem}
    connection, credentials = Connection.from_payload(body)
    assert (credentials.client_cert, credentials.client_key) == (certs.client.cert_pem, certs.client.key_pem)
    kept = json.dumps(connection.to_doc()) + json.dumps(connection.to_dict())
    assert "PRIVATE KEY" not in kept and certs.client.cert_pem not in kept and "pw" not in kept.split('"')
    assert connection.tls.client_certificate and connection.security == "require + client certificate"


def test_ssh_bastion(ssh_key):
    body = {**PG, "via": "ssh", "ssh_host": "bastion.example.com", "ssh_user": "tunnel"}
    refused(body, "ssh_private_key", "is required")
    header = ssh_key.private_key.splitlines()[0]  # a key's first line, and no key after it
    refused({**body, "ssh_private_key": f"{header}\nnope\n"}, "ssh_private_key")
    refused({**body, "ssh_private_key": ssh_key.private_key, "ssh_host_key": "md5:aa"}, "ssh_host_key", "SHA256")
    refused({**body, "ssh_private_key": ssh_key.private_key, "ssh_port": 0}, "ssh_port")
    connection, credentials = Connection.from_payload({**body, "ssh_private_key": ssh_key.private_key})
    assert connection.ssh is not None and (connection.ssh.host, connection.ssh.port) == ("bastion.example.com", 22)
    assert credentials.ssh_key == ssh_key.private_key
    assert connection.security == "require, via bastion (host key not confirmed)"
    pinned = connection.with_host_key("SHA256:" + "A" * 43)
    assert pinned.security == "require, via bastion" and Connection.from_doc(pinned.to_doc()) == pinned


def test_cloudsql():
    body = {**PG, "via": "cloudsql", "host": "ignored"}
    refused(body, "cloudsql_instance", "is required")
    refused({**body, "cloudsql_instance": "just-a-name"}, "cloudsql_instance", "project:region:instance")
    instance = {**body, "cloudsql_instance": "my-project:europe-west1:orders-db"}
    refused({**instance, "cloudsql_ip_type": "ipv6"}, "cloudsql_ip_type")
    refused({**instance, "tls_mode": "verify-full"}, "tls_mode", "Google's connector")
    refused({**instance, "cloudsql_iam": True, "password": "x"}, "password", "IAM")
    connection, _ = Connection.from_payload({**instance, "cloudsql_ip_type": "private", "cloudsql_iam": True})
    assert (connection.host, connection.port) == ("", None)
    assert connection.security == "Cloud SQL, private IP, IAM login"
    assert connection.where == "Cloud SQL instance my-project:europe-west1:orders-db"
    assert Connection.from_doc(connection.to_doc()) == connection


def test_a_connection_saved_before_tls_modes_keeps_what_the_drivers_did():
    legacy = {"id": "0123456789ab", "name": "old", "type": "mysql", "host": "db", "port": 3306, "database": "d"}
    connection = Connection.from_doc({**legacy, "user": "u", "project": "", "created_at": ""})
    assert connection.tls.mode == "preferred" and connection.via == "direct"


def test_credentials_round_trip_and_read_a_bare_password():
    full = Credentials("p", "cert", "key", "ssh", "phrase")
    assert Credentials.load(full.dump()) == full
    assert Credentials.load("plain old password") == Credentials(password="plain old password")
    assert Credentials.load('{"looks": "like json"}') == Credentials(password='{"looks": "like json"}')
