"""TLS as a connection's mode asks: one context for the Python drivers (pg8000, pymysql), files for
the C and Rust readers (libpq, ConnectorX), and failures said in words a user can act on."""

import contextlib
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..secrets import private_file
from .options import TlsMode


@dataclass(frozen=True)
class TlsFiles:
    """The certificates as files in a private temporary directory (0700, files 0600), for the life
    of one opened source; "" where there is none."""

    folder: Path
    ca: str
    cert: str
    key: str

    @classmethod
    def write(cls, ca: str, cert: str, key: str) -> "TlsFiles":
        folder = Path(tempfile.mkdtemp(prefix="etl-tls-"))  # mkdtemp makes it 0700

        def put(name: str, text: str) -> str:
            if not text:
                return ""
            with os.fdopen(private_file(folder / name), "w") as f:
                f.write(text)
            return str(folder / name)

        return cls(folder, put("ca.pem", ca), put("client.pem", cert), put("client.key", key))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def client_context(level: TlsMode, ca: str, files: TlsFiles | None) -> ssl.SSLContext | None:
    """The context pg8000's socket or pymysql is wrapped in; None for plaintext. Verification as
    libpq's sslmode means it: require checks nothing, verify-ca the chain, verify-full the name too.
    Without a CA of the connection's own, the system's trusted CAs (a public cloud's certificates)."""
    if level == TlsMode.DISABLE:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if level >= TlsMode.VERIFY_CA:
        context.check_hostname = level == TlsMode.VERIFY_FULL
        if ca:
            context.load_verify_locations(cadata=ca)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if files is not None and files.cert:
        context.load_cert_chain(files.cert, files.key)
    return context


def system_ca_file() -> str:
    """The system's CA bundle, for libpq's sslrootcert when the connection gives no CA."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


def describe(error: BaseException) -> str:
    """What failed in a TLS handshake, as the user would fix it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or str(error)
        lowered = reason.lower()
        if "mismatch" in lowered:
            return f"the server's certificate is not issued for this host name ({reason}: hostname mismatch)"
        if "expired" in lowered:
            return f"the server's certificate has expired ({reason})"
        if "not yet valid" in lowered:
            return f"the server's certificate is not valid yet ({reason}): check the clocks"
        if "self-signed" in lowered or "unable to get local issuer" in lowered or "unknown ca" in lowered:
            return f"the server's certificate is not signed by the CA given (unknown CA: {reason})"
        return f"the server's certificate was refused ({reason})"
    text = str(error)
    if "unknown ca" in text.lower():
        return "the server does not accept the client certificate (unknown CA)"
    with contextlib.suppress(AttributeError):
        if error.reason:  # type: ignore[attr-defined]
            return f"the TLS handshake failed ({error.reason})"  # type: ignore[attr-defined]
    return f"the TLS handshake failed ({text})"
