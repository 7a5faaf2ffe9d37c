"""An SSH bastion of the tests' own (issue 14): Debian's OpenSSH server on a loopback port, with its
own config, host key and authorized keys, so that a connection can go through a real bastion.

It logs in as the user the tests run as: root here and in CI (`PermitRootLogin prohibit-password`,
keys only), which changes nothing on the machine, where a dedicated user would need useradd and
leave an account behind. `ssh_forward` opens a local forward with the `ssh` binary, to prove the
bastion does what the product's tunnels will ask of it."""

import getpass
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from etlwizard.emulator import free_port

SSHD = Path("/usr/sbin/sshd")
INSTALL = "apt-get install -y openssh-server (bin/test installs it where it runs as root)"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class SshKey:
    """A client key pair: the private key as a user would paste it, and where it lies on disk."""

    path: Path
    private_key: str  # the key's text: OpenSSH's format (ed25519) or PEM (RSA)
    public_key: str  # one authorized_keys line: "ssh-ed25519 AAAA... comment"
    fingerprint: str  # "SHA256:...", as `ssh-keygen -lf` prints it


@dataclass(frozen=True)
class SshBastion:
    """A running bastion: where it listens, whom it lets in (and whom not), and its host key."""

    host: str
    port: int
    user: str
    key: SshKey  # ed25519, authorized
    rsa_key: SshKey  # RSA in the PEM format, authorized
    wrong_key: SshKey  # ed25519, not authorized: the bastion refuses it
    host_public_key: str  # "ssh-ed25519 AAAA..." (without comment)
    host_key_fingerprint: str  # "SHA256:...", what the first Test connection shows the user
    pid: int  # the listening sshd; the connections it forwards are its descendants'
    log: Path  # sshd's own log (-e, LogLevel VERBOSE)

    def known_hosts_line(self, public_key: str | None = None) -> str:
        """The known_hosts line that pins this bastion's host key (or `public_key` in its place)."""
        return f"[{self.host}]:{self.port} {public_key or self.host_public_key}\n"

    def forwards(self, client_port: int, server_port: int) -> bool:
        """Whether the TCP connection 127.0.0.1:client_port -> :server_port is held by this sshd,
        that is, whether a database that sees that client port sees a connection through the bastion."""
        inode = _socket_inode(client_port, server_port)
        return inode is not None and any(_holds_socket(pid, inode) for pid in _descendants(self.pid))

    def authorize(self, public_key: str) -> None:
        """Let one more client key in (one a test made, say with a passphrase): sshd reads the
        authorized keys file at each login, so the next login may use it."""
        with open(self.log.parent / "authorized_keys", "a") as keys:  # the bastion's folder holds both
            keys.write(public_key.strip() + "\n")


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout


def make_key(path: Path, kind: str = "ed25519") -> SshKey:
    """A new key pair without passphrase at `path` (and `path`.pub): ed25519, or RSA in PEM."""
    options = ["-t", "ed25519"] if kind == "ed25519" else ["-t", "rsa", "-b", "2048", "-m", "PEM"]
    _run("ssh-keygen", "-q", *options, "-N", "", "-C", f"etl-wizard-test-{path.name}", "-f", str(path))
    return SshKey(
        path=path,
        private_key=path.read_text(),
        public_key=path.with_suffix(".pub").read_text().strip(),
        fingerprint=fingerprint(path.with_suffix(".pub")),
    )


def fingerprint(public_key_file: Path) -> str:
    """The SHA256 fingerprint `ssh-keygen -lf` prints: "256 SHA256:... comment (ED25519)"."""
    return _run("ssh-keygen", "-lf", str(public_key_file)).split()[1]


def missing() -> str | None:
    """What is missing to run the bastion here, as something to install; None when nothing is."""
    if not SSHD.exists():
        return f"{SSHD} is not installed: {INSTALL}"
    for binary in ("ssh", "ssh-keygen"):
        if not any((Path(p) / binary).exists() for p in os.environ.get("PATH", "").split(os.pathsep)):
            return f"{binary} is not installed: apt-get install -y openssh-client"
    return None


def _config(folder: Path, host_key: Path, authorized_keys: Path) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        f"""ListenAddress 127.0.0.1
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized_keys}
# The temp folder lies under /tmp, which is world-writable: StrictModes would refuse the keys file.
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowTcpForwarding yes
# Any destination: the test PostgreSQL and MariaDB, and the TLS servers on ports of their own.
PermitOpen any
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
LoginGraceTime 10
LogLevel VERBOSE
"""
    )
    return config


@contextmanager
def running_bastion(folder: Path) -> Iterator[SshBastion]:
    """sshd on 127.0.0.1 and a free port until the block ends, with keys made in `folder`."""
    problem = missing()
    if problem:
        raise RuntimeError(problem)
    # sshd refuses to start as root without its privilege separation directory (the package's
    # service would create it; that service is not started here).
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    except OSError as error:
        raise RuntimeError(f"sshd needs /run/sshd: run the tests as root or create it ({error})") from error
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_key = make_key(folder / "host_key")
    key, rsa_key, wrong_key = (
        make_key(folder / name, kind)
        for name, kind in [("client_ed25519", "ed25519"), ("client_rsa", "rsa"), ("wrong_ed25519", "ed25519")]
    )
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_text(f"{key.public_key}\n{rsa_key.public_key}\n")
    port = free_port()
    config = _config(folder, host_key.path, authorized_keys)
    log = folder / "sshd.log"
    with open(log, "wb") as out:  # sshd keeps its own handle
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(log, "Server listening on", process, START_TIMEOUT)
        yield SshBastion(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            key=key,
            rsa_key=rsa_key,
            wrong_key=wrong_key,
            host_public_key=" ".join(host_key.public_key.split()[:2]),
            host_key_fingerprint=host_key.fingerprint,
            pid=process.pid,
            log=log,
        )
    finally:
        # Each connection's sshd is a session of its own (setsid): end them, then the listener.
        for pid in _descendants(process.pid)[:0:-1]:
            _kill(pid)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_for(log: Path, line: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited ({process.returncode}): {log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not listen within {timeout} s: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        pass


# --- a local forward with the ssh client --------------------------------------------------------


class ForwardFailed(Exception):
    """ssh exited before its forward was up (or it was not up in time); the message is ssh's stderr."""


@contextmanager
def ssh_forward(
    bastion: SshBastion,
    destination: tuple[str, int],
    known_hosts: Path,
    key: SshKey | None = None,
    port: int | None = None,
    timeout: float = 10.0,
) -> Iterator[int]:
    """`ssh -N -L` through the bastion (or whatever listens on `port`), checking its host key against
    `known_hosts` only; yields the local port that reaches `destination`, and ends ssh after."""
    local = free_port()
    options = {
        "IdentitiesOnly": "yes",  # this key only: not the agent's, nor ~/.ssh's
        "IdentityAgent": "none",
        "BatchMode": "yes",  # never a prompt
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": known_hosts,
        "GlobalKnownHostsFile": "/dev/null",
        "ExitOnForwardFailure": "yes",
        "ConnectTimeout": int(timeout),
    }
    command = ["ssh", "-v", "-F", "/dev/null", "-N", "-L", f"127.0.0.1:{local}:{destination[0]}:{destination[1]}"]
    command += ["-i", str((key or bastion.key).path), "-p", str(port or bastion.port)]
    command += [arg for name, value in options.items() for arg in ("-o", f"{name}={value}")]
    command.append(f"{bastion.user}@{bastion.host}")
    with tempfile.NamedTemporaryFile(prefix="ssh-", suffix=".log") as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            # After authentication ssh binds the forwards, then enters its loop (and says so).
            deadline = time.monotonic() + timeout
            while "Entering interactive session" not in (said := Path(stderr.name).read_text(errors="replace")):
                if process.poll() is not None:
                    raise ForwardFailed(_without_debug(said))
                if time.monotonic() > deadline:
                    raise ForwardFailed(f"no forward within {timeout} s: {_without_debug(said)}")
                time.sleep(0.05)
            yield local
        finally:
            process.kill()
            process.wait(timeout=5)


def _without_debug(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith(("debug", "OpenSSH_")))


# --- who holds a TCP connection (Linux's /proc) ---------------------------------------------------


def _socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the IPv4 loopback socket local_port -> remote_port, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
            return inode
    return None


def _holds_socket(pid: int, inode: int) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return True
        except OSError:
            continue
    return False


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, parents before children."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
            parent[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found = [root]
    for pid in found:
        found.extend(child for child, ppid in parent.items() if ppid == pid)
    return found
