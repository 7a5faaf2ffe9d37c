"""A connection's security and network options (TLS, an SSH bastion, a Cloud SQL instance) as the
CLI takes them, from `connections create`'s options and a job file's entries alike.

Both speak the job file's flat names (`tls_mode`, `ssh_host`, `ssh_key_file`, ...); a `Names`
function says how the user wrote each (`--ssh-key` on the command line, `ssh_key_file` in a file)
so that an error names what they typed. Secrets are never given as values: certificates and keys
are read from files, the SSH key's passphrase from an environment variable or asked for (hidden)
when the key is encrypted; they are sent once, to create the connection, and never printed.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..reach.options import IP_TYPES, MODE_NAMES, VIA
from ._api import JSON, CliError

Names = Callable[[str], str]

SSH_FIELDS = ("ssh_host", "ssh_port", "ssh_user", "ssh_host_key")
CLOUDSQL_FIELDS = ("cloudsql_instance", "cloudsql_ip_type", "cloudsql_iam")
SETTINGS = ("tls_mode", "via", *SSH_FIELDS, *CLOUDSQL_FIELDS)  # non-secret: in a file, and exported
# Where each secret comes from (a file, or the variable named), and the API field it goes to.
FILES = {
    "tls_ca_file": "tls_ca",
    "tls_client_cert_file": "tls_client_cert",
    "tls_client_key_file": "tls_client_key",
    "ssh_key_file": "ssh_private_key",
}
SECRET_SOURCES = (*FILES, "ssh_passphrase_env")
BY_VIA = {"ssh": (*SSH_FIELDS, "ssh_key_file", "ssh_passphrase_env"), "cloudsql": CLOUDSQL_FIELDS}
REQUIRED = {"ssh": ("ssh_host", "ssh_user"), "cloudsql": ("cloudsql_instance",)}  # and, to create, ssh_key_file
# What a file may not hold, and what to write instead.
INSTEAD = {
    "password": "password_env (the variable that holds it), or let apply ask",
    "tls_ca": "tls_ca_file (a path)",
    "tls_client_cert": "tls_client_cert_file (a path)",
    "tls_client_key": "tls_client_key_file (a path)",
    "ssh_private_key": "ssh_key_file (a path)",
    "ssh_key": "ssh_key_file (a path)",
    "ssh_passphrase": "ssh_passphrase_env (the variable that holds it)",
}

CLI_OPTIONS = {
    "tls_ca_file": "--tls-ca",
    "tls_client_cert_file": "--tls-client-cert",
    "tls_client_key_file": "--tls-client-key",
    "ssh_key_file": "--ssh-key",
}


def cli_name(field: str) -> str:
    return CLI_OPTIONS.get(field, "--" + field.replace("_", "-"))


def file_name(field: str) -> str:
    return field


def _given(value: object) -> bool:
    return value is not None and value is not False and value != ""


def check_options(kind: str, fields: JSON, where: str, names: Names) -> str:
    """What can be known wrong about the options without reading a file or the environment; returns
    the way in: `via` as given, else implied by the fields given (ssh_... or cloudsql_...), else direct."""
    given = [k for k in (*SETTINGS, *SECRET_SOURCES) if _given(fields.get(k))]
    if kind == "bigquery":
        if given:
            raise CliError(f"{where}{names(given[0])} is for postgresql and mysql connections, not bigquery.")
        return "direct"
    for key in (*SETTINGS, *SECRET_SOURCES):
        value = fields.get(key)
        if value is None:
            continue
        if key == "ssh_port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise CliError(f"{where}{names(key)} must be a whole number from 1 to 65535.")
        elif key == "cloudsql_iam":
            if not isinstance(value, bool):
                raise CliError(f"{where}{names(key)} must be true or false.")
        elif not isinstance(value, str) or not value:
            raise CliError(f"{where}{names(key)} must be a non-empty string.")
    mode = fields.get("tls_mode")
    if mode is not None and mode not in MODE_NAMES[kind]:
        raise CliError(f"{where}{names('tls_mode')} must be one of {', '.join(MODE_NAMES[kind])} for {kind}.")
    if fields.get("cloudsql_ip_type") is not None and fields["cloudsql_ip_type"] not in IP_TYPES:
        raise CliError(f"{where}{names('cloudsql_ip_type')} must be one of {', '.join(IP_TYPES)}.")
    stated = fields.get("via")
    if stated is not None and stated not in VIA:
        raise CliError(f"{where}{names('via')} must be one of {', '.join(VIA)}.")
    implied = {way: [k for k in keys if k in given] for way, keys in BY_VIA.items()}
    if implied["ssh"] and implied["cloudsql"]:
        raise CliError(
            f"{where}{names(implied['ssh'][0])} and {names(implied['cloudsql'][0])}: a connection goes "
            "through an SSH bastion or to a Cloud SQL instance, not both."
        )
    way = next((w for w, keys in implied.items() if keys), None)
    if stated is not None and way is not None and way != stated:
        raise CliError(f"{where}{names(implied[way][0])} is used only with {names('via')} {way}, not {stated}.")
    via = stated or way or "direct"
    missing = [k for k in REQUIRED.get(via, ()) if not _given(fields.get(k))]
    if missing:
        raise CliError(f"{where}{names(missing[0])} is required with {names('via')} {via}.")
    if via == "cloudsql":
        for key in ("host", "port", "tls_mode", "tls_ca_file", "tls_client_cert_file", "tls_client_key_file"):
            if _given(fields.get(key)):
                raise CliError(
                    f"{where}{names(key)} is not used with {names('via')} cloudsql: Google's connector "
                    "finds the instance and encrypts the connection."
                )
        if fields.get("cloudsql_iam") and fields.get("password_env") is not None:
            raise CliError(
                f"{where}{names('password_env')} is not used with {names('cloudsql_iam')}: "
                "the service account logs in, without a password."
            )
    if _given(fields.get("tls_client_cert_file")) != _given(fields.get("tls_client_key_file")):
        raise CliError(
            f"{where}{names('tls_client_cert_file')} and {names('tls_client_key_file')} go together: "
            "a client certificate needs its key."
        )
    return via


def needs_password(kind: str, fields: JSON) -> bool:
    return kind != "bigquery" and not fields.get("cloudsql_iam")


def resolve(folder: Path, value: str) -> Path:
    """A path as a file gives it: relative to the file's folder; ~ is the home folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def check_sources(fields: JSON, via: str, folder: Path, where: str, names: Names) -> None:
    """What creating the connection needs beyond its settings: the files and the variable the options
    name are there (checked before anything is created). A connection that exists needs none of it:
    a job file may leave them out (export does)."""
    if via == "ssh" and not _given(fields.get("ssh_key_file")):
        raise CliError(f"{where}{names('ssh_key_file')} is required with {names('via')} ssh.")
    for key in FILES:
        if _given(fields.get(key)):
            path = resolve(folder, fields[key])
            if not path.is_file() or not os.access(path, os.R_OK):
                raise CliError(f"{where}{names(key)} names {path}, which is not a file this user may read.")
    variable = fields.get("ssh_passphrase_env")
    if variable is not None and variable not in os.environ:
        raise CliError(f"{where}{names('ssh_passphrase_env')} names {variable!r}, which is not set.")


def read_pem(path: Path, what: str) -> str:
    """A certificate or key file's text (it is never printed, also not in an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(
            f"{what}: {path} is not PEM text (a DER file? openssl x509 -inform der -in FILE -out FILE.pem "
            "converts a certificate)."
        ) from None
    except OSError as e:
        raise CliError(f"{what}: cannot read {path} ({e.strerror or e}).") from None
    if "-----BEGIN " not in text:
        raise CliError(f"{what}: {path} is not PEM text (-----BEGIN ...-----).")
    return text


def key_is_encrypted(text: str) -> bool:
    """Whether a private key needs a passphrase: asyncssh, which will read it, refuses it without one."""
    import asyncssh

    try:
        asyncssh.import_private_key(text)
    except asyncssh.KeyEncryptionError:
        return True
    except asyncssh.KeyImportError as e:
        return "passphrase" in str(e).lower()
    return False


def security_body(
    kind: str,
    via: str,
    fields: JSON,
    folder: Path,
    where: str,
    names: Names,
    ask_passphrase: Callable[[], str],
) -> JSON:
    """The API fields of the options (POST /api/connections/): the settings as given, the files read,
    the passphrase from its variable or, for an encrypted key, asked for."""
    if kind == "bigquery":
        return {}
    body: dict[str, Any] = {"via": via}
    if fields.get("tls_mode") is not None:
        body["tls_mode"] = fields["tls_mode"]
    for key, api_field in FILES.items():
        if _given(fields.get(key)):
            body[api_field] = read_pem(resolve(folder, fields[key]), f"{where}{names(key)}")
    if via == "ssh":
        for key in SSH_FIELDS:
            if fields.get(key) is not None:
                body[key] = fields[key]
        variable = fields.get("ssh_passphrase_env")
        if variable is not None:
            if variable not in os.environ:
                raise CliError(f"{where}{names('ssh_passphrase_env')} names {variable!r}, which is not set.")
            body["ssh_passphrase"] = os.environ[variable]
        elif key_is_encrypted(body["ssh_private_key"]):
            body["ssh_passphrase"] = ask_passphrase()
    elif via == "cloudsql":
        for key in CLOUDSQL_FIELDS:
            if fields.get(key) is not None:
                body[key] = fields[key]
    return body
