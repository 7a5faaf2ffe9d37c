"""What a saved connection says about reaching its database: TLS, and the way in (direct, through an
SSH bastion, or as a Cloud SQL instance). Validated from a request here; secrets (client key and
certificate, SSH key and passphrase) go to Credentials and the secret store, never into these.
"""

import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from ..errors import InvalidInput
from ..payload import Body, check_text, optional_bool, optional_text, require_choice, require_text

VIA = ("direct", "ssh", "cloudsql")
IP_TYPES = ("public", "private", "psc")
MAX_PEM = 64 * 1024  # a certificate chain of a dozen certificates fits many times over
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,253}")
# project:region:instance; a project of a Workspace domain is domain:project (example.com:proj)
_INSTANCE = re.compile(r"(?:[a-z0-9.\-]+:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]:[a-z]+-[a-z]+[0-9]:[a-z][a-z0-9\-]{0,97}")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


class TlsMode(IntEnum):
    """How much of TLS a connection insists on, weakest first; each engine has its own names."""

    DISABLE = 0  # plaintext
    PREFER = 1  # TLS when the server offers it, nothing verified (what the drivers do by default)
    REQUIRE = 2  # always TLS; the certificate is not checked
    VERIFY_CA = 3  # TLS with a certificate signed by the CA given (or a public one)
    VERIFY_FULL = 4  # and issued for the host name connected to


MODE_NAMES: dict[str, tuple[str, ...]] = {
    "postgresql": ("disable", "prefer", "require", "verify-ca", "verify-full"),
    "mysql": ("disabled", "preferred", "required", "verify-ca", "verify-identity"),
}


@dataclass(frozen=True)
class Tls:
    mode: str = ""  # the engine's name for it (MODE_NAMES); "" for BigQuery
    ca: str = ""  # PEM: the certificate authority the server's certificate must chain to (public)
    client_certificate: bool = False  # a client certificate and key are in the secret store

    def level(self, kind: str) -> TlsMode:
        """A connection made in code without a mode: what the drivers do by default."""
        return TlsMode(MODE_NAMES[kind].index(self.mode)) if self.mode else TlsMode.PREFER

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it: the CA is there or not (its PEM is long and says nothing to a reader)."""
        return {"mode": self.mode, "ca": bool(self.ca), "client_certificate": self.client_certificate}


@dataclass(frozen=True)
class Ssh:
    host: str
    user: str
    port: int = 22
    host_key: str = ""  # the bastion's host key fingerprint (SHA256:...), once confirmed; "" until then


@dataclass(frozen=True)
class CloudSql:
    instance: str  # project:region:instance
    ip_type: str = "public"  # public | private | psc: which of the instance's addresses the connector uses
    iam: bool = False  # IAM database login: the service account logs in, no password


@dataclass(frozen=True)
class Credentials:
    """A connection's secrets, kept together in one secret-store entry (dump/load)."""

    password: str = ""
    client_cert: str = ""  # PEM
    client_key: str = ""  # PEM
    ssh_key: str = ""  # OpenSSH or PEM private key
    ssh_passphrase: str = ""

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.client_cert, self.client_key, self.ssh_key, self.ssh_passphrase) if s]

    def dump(self) -> str:
        return json.dumps({"etl_credentials": 1, **{k: v for k, v in asdict(self).items() if v}})

    @classmethod
    def load(cls, text: str) -> "Credentials":
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.pop("etl_credentials", None) == 1:
            return cls(**doc)
        return cls(password=text)  # saved when a connection's only secret was its password


def port(value: object, default: int, field: str = "port") -> int:
    if value in (None, ""):
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidInput(field, "must be a whole number from 1 to 65535")
    return value


def host(body: Body, field: str) -> str:
    value = require_text(body, field, max_length=253)
    if not _HOST.fullmatch(value):
        raise InvalidInput(field, "must be a host name or IP address")
    return value


def is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_tls(body: Body, kind: str, host_name: str, via: str) -> tuple[Tls, str, str]:
    """(Tls, client certificate PEM, client key PEM). Without a mode: verify-full where a CA is given;
    plaintext to a loopback address (the traffic never leaves the machine, or the bastion); else
    require. A Cloud SQL instance is reached through Google's connector or socket, which encrypt."""
    names = MODE_NAMES[kind]
    ca = pem(body, "tls_ca", "CERTIFICATE")
    cert = pem(body, "tls_client_cert", "CERTIFICATE")
    key = pem(body, "tls_client_key", "PRIVATE KEY")
    if bool(cert) != bool(key):
        raise InvalidInput("tls_client_key" if cert else "tls_client_cert", "a client certificate needs its key")
    if via == "cloudsql":
        if ca or cert:
            raise InvalidInput("tls_ca" if ca else "tls_client_cert", "a Cloud SQL connection takes no certificates")
        default = names[TlsMode.DISABLE]
    elif ca:
        default = names[TlsMode.VERIFY_FULL]
    else:
        default = names[TlsMode.DISABLE] if is_loopback(host_name) else names[TlsMode.REQUIRE]
    mode = require_choice(body, "tls_mode", names, default=default)
    if via == "cloudsql" and mode != default:
        raise InvalidInput("tls_mode", "is set by Google's connector for a Cloud SQL instance (always encrypted)")
    level = TlsMode(names.index(mode))
    if cert and level == TlsMode.DISABLE:
        raise InvalidInput("tls_mode", f"{mode} sends no client certificate: choose {names[TlsMode.REQUIRE]} or higher")
    if ca:
        check_certificates(ca, "tls_ca")
    if cert:
        check_key_pair(cert, key)
    return Tls(mode, ca, bool(cert)), cert, key


def parse_ssh(body: Body) -> tuple[Ssh, str, str]:
    """(Ssh, private key, passphrase)."""
    key = pem(body, "ssh_private_key", "PRIVATE KEY", required=True)
    passphrase = optional_text(body, "ssh_passphrase", max_length=1024) or ""
    check_ssh_key(key, passphrase)
    host_key = optional_text(body, "ssh_host_key", max_length=60) or ""
    if host_key and not _FINGERPRINT.fullmatch(host_key):
        raise InvalidInput("ssh_host_key", "must be a SHA256 fingerprint as ssh-keygen -l prints it (SHA256:...)")
    ssh = Ssh(
        host=host(body, "ssh_host"),
        user=require_text(body, "ssh_user", max_length=128),
        port=port(body.get("ssh_port"), 22, "ssh_port"),
        host_key=host_key,
    )
    return ssh, key, passphrase


def parse_cloudsql(body: Body) -> CloudSql:
    instance = require_text(body, "cloudsql_instance", max_length=200)
    if not _INSTANCE.fullmatch(instance):
        raise InvalidInput("cloudsql_instance", "must be the instance connection name, project:region:instance")
    return CloudSql(
        instance=instance,
        ip_type=require_choice(body, "cloudsql_ip_type", IP_TYPES, default="public"),
        iam=optional_bool(body, "cloudsql_iam"),
    )


def pem(body: Body, field: str, kind: str, *, required: bool = False) -> str:
    """A PEM block of text (certificates or a key), line breaks allowed; "" when absent."""
    value = body.get(field)
    if value in (None, ""):
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if not isinstance(value, str) or len(value) > MAX_PEM:
        raise InvalidInput(field, f"must be PEM text of at most {MAX_PEM // 1024} KiB")
    check_text(value.replace("\r", "").replace("\n", ""), field, MAX_PEM)
    if f"-----BEGIN {kind}" not in value and not (kind == "PRIVATE KEY" and "PRIVATE KEY-----" in value):
        raise InvalidInput(field, f"must be PEM text (-----BEGIN {kind}-----)")
    return value.replace("\r\n", "\n")


def check_certificates(text: str, field: str) -> None:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise InvalidInput(field, "holds no readable PEM certificate") from None


def check_key_pair(cert: str, key: str) -> None:
    """The key is a private key and belongs to the certificate (its error never quotes the key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    check_certificates(cert, "tls_client_cert")
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except TypeError:
        raise InvalidInput("tls_client_key", "is encrypted: give the key without a passphrase") from None
    except ValueError:
        raise InvalidInput("tls_client_key", "is not a readable PEM private key") from None
    public = x509.load_pem_x509_certificates(cert.encode())[0].public_key()
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(serialization.Encoding.DER, raw) != public.public_bytes(
        serialization.Encoding.DER, raw
    ):
        raise InvalidInput("tls_client_key", "does not belong to the client certificate")


def check_ssh_key(key: str, passphrase: str) -> None:
    import asyncssh

    try:
        asyncssh.import_private_key(key, passphrase or None)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as e:
        if passphrase:
            raise InvalidInput("ssh_passphrase", "does not open the key") from None
        problem = "is encrypted: give its passphrase" if "passphrase" in str(e).lower() else "is not a private key"
        raise InvalidInput("ssh_private_key", problem) from None
