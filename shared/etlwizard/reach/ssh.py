"""A database behind an SSH bastion: a local port forward through it, with asyncssh.

The drivers (pg8000, pymysql, connectorx, ADBC) only know host and port, so the tunnel gives them
127.0.0.1:<port>. asyncssh needs an event loop and the callers are synchronous, so each tunnel runs
its own loop on a thread of its own, for as long as the run (or preview, or test) that opened it.

The bastion's host key is pinned by its SHA256 fingerprint, which the user confirmed when the first
Test connection showed it; it is checked during the key exchange, before the key is offered to log in.
No ~/.ssh file, agent or config is consulted: a tunnel uses what its saved connection says, nothing else.
"""

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import asyncssh

from ..errors import EtlError, HostKeyChanged, HostKeyUnconfirmed, SourceAuthError, SshFailed

log = logging.getLogger(__name__)
# asyncssh logs every forwarded channel opening and closing at INFO: a run would log each connection
logging.getLogger("asyncssh").setLevel(logging.WARNING)

# OpenSSH's own order (plain keys, no certificates): the bastion presents the same key to the first
# Test connection, to every tunnel, and to `ssh`, so the fingerprint a user compares is the one pinned.
HOST_KEY_ALGS = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
KEEPALIVE_INTERVAL = 30.0  # seconds without a word from the bastion before asking it
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the connection counts as lost


class _PinnedHostKey(asyncssh.SSHClient):
    """Trusts the bastion's host key only if its fingerprint is the pinned one, and remembers the
    fingerprint it was shown, so that a refusal can say which key the bastion presented."""

    def __init__(self, pinned: str) -> None:
        self.pinned = pinned
        self.presented = ""

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key.get_fingerprint("sha256")
        return bool(self.pinned) and self.presented == self.pinned


class SshTunnel:
    """A local port forward 127.0.0.1:<port> -> target through an SSH bastion; asyncssh's event loop on a
    daemon thread of its own. Opened per run (or per preview/test) and closed after, also on failure."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        private_key: str,
        passphrase: str,
        host_key: str,
        target_host: str,
        target_port: int,
        timeout: float,
    ) -> None:
        self.bastion = f"{host}:{port}"
        self.target = f"{target_host}:{target_port}"
        self._host, self._port, self._user = host, port, user
        self._private_key, self._passphrase = private_key, passphrase
        self._host_key = host_key  # "SHA256:...", or "" while not confirmed
        self._target_host, self._target_port = target_host, target_port
        self._timeout = timeout
        self._lock = threading.Lock()  # open() and close() from different threads take turns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connection: asyncssh.SSHClientConnection | None = None
        self._listener: asyncssh.SSHListener | None = None
        self._local_port: int | None = None

    def __repr__(self) -> str:  # never the key nor the passphrase
        return f"SshTunnel({self._user}@{self.bastion} -> {self.target})"

    def open(self) -> int:
        """The local port on 127.0.0.1 that reaches the target; the same port on a second call."""
        with self._lock:
            if self._local_port is None:
                key = self._client_key()
                loop = self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name=f"ssh-tunnel {self.bastion}", daemon=True)
                try:
                    self._thread.start()
                    self._local_port = asyncio.run_coroutine_threadsafe(self._open(key), loop).result()
                except BaseException:
                    self._shut_down()
                    raise
                log.info("SSH tunnel 127.0.0.1:%d -> %s through %s", self._local_port, self.target, self.bastion)
            return self._local_port

    def close(self) -> None:
        """Closes the listener and the SSH connection (and with it every forwarded connection), and
        ends the loop's thread; nothing is left listening or running. A second call does nothing."""
        with self._lock:
            if self._loop is not None:
                self._shut_down()
                log.info("SSH tunnel to %s through %s closed", self.target, self.bastion)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _client_key(self) -> asyncssh.SSHKey:
        try:
            return asyncssh.import_private_key(self._private_key, self._passphrase or None)
        except (ValueError, TypeError) as error:  # KeyImportError is a ValueError; its text holds no key
            # Not worth a retry: the saved key (or its passphrase) is what has to change.
            raise SourceAuthError(f"the SSH private key for {self.bastion} cannot be used: {error}") from None

    async def _open(self, key: asyncssh.SSHKey) -> int:
        """Logs in, listens on a free local port, and checks that the bastion reaches the target."""
        client = _PinnedHostKey(self._host_key)
        try:
            self._connection = await asyncssh.connect(
                self._host,
                self._port,
                username=self._user,
                client_keys=[key],
                client_factory=lambda: client,
                # Three empty lists, not (): an empty known_hosts would make asyncssh read ~/.ssh/known_hosts.
                known_hosts=([], [], []),
                server_host_key_algs=HOST_KEY_ALGS,
                x509_trusted_certs=None,
                config=None,
                agent_path=None,
                preferred_auth="publickey",
                connect_timeout=self._timeout,  # the TCP connect, the key exchange and the login
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
            )
            self._listener = await self._connection.forward_local_port(
                "127.0.0.1", 0, self._target_host, self._target_port
            )
        except asyncssh.HostKeyNotVerifiable as error:
            raise self._host_key_refused(client.presented) from error
        except asyncssh.PermissionDenied as error:
            refused = f"the SSH bastion {self.bastion} refused user '{self._user}' with this key"
            raise SourceAuthError(refused) from error
        except Exception as error:
            raise _failure(self.bastion, error, self._timeout) from error
        await self._reach_target()
        return self._listener.get_port()

    def _host_key_refused(self, presented: str) -> EtlError:
        if not presented:  # the bastion never got as far as presenting a key
            return SshFailed(f"the SSH bastion {self.bastion} presented no host key it could be checked by")
        if not self._host_key:
            return HostKeyUnconfirmed(
                f"the SSH bastion {self.bastion} presents host key {presented}; "
                "confirm it is the bastion's before connecting through it",
                presented,
            )
        return HostKeyChanged(
            f"the SSH bastion {self.bastion} presents host key {presented}, not the confirmed {self._host_key}: "
            "a changed key may mean the bastion was rebuilt, or that someone is in between; "
            "confirm the new key before connecting through it"
        )

    async def _reach_target(self) -> None:
        """One channel to the target and closed again: a bastion that cannot reach the database says
        so now, by name, rather than as a connection the driver sees closed later."""
        assert self._connection is not None
        try:
            _, writer = await asyncio.wait_for(
                self._connection.open_connection(self._target_host, self._target_port), self._timeout
            )
        except asyncssh.ChannelOpenError as error:
            raise SshFailed(
                f"the SSH bastion {self.bastion} cannot reach the database at {self.target}: {error.reason}"
            ) from error
        except TimeoutError as error:
            raise SshFailed(
                f"the SSH bastion {self.bastion} did not reach the database at {self.target} within {self._timeout:g} s"
            ) from error
        writer.close()

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._connection is not None:
            self._connection.close()
            try:
                await asyncio.wait_for(self._connection.wait_closed(), self._timeout)
            except TimeoutError:
                pass  # a bastion that does not answer the close: the socket is closed on our side anyway

    async def _wind_down(self) -> None:
        """What asyncio.run does after its coroutine, on the loop's own thread (the caller's may run a
        loop of its own): close, cancel what is left (forwarded connections' tasks), end async
        generators and the resolver's threads."""
        await self._close()
        loop, current = asyncio.get_running_loop(), asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks(loop) if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    def _shut_down(self) -> None:
        """Closes what is open, stops the loop, joins its thread and closes the loop; bounded, so a
        loop that stopped answering cannot hold the caller."""
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None
        try:
            if thread.is_alive():
                asyncio.run_coroutine_threadsafe(self._wind_down(), loop).result(2 * self._timeout + 1)
        except TimeoutError:
            log.warning("SSH tunnel to %s through %s did not close in time", self.target, self.bastion)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread.ident is not None:  # started
                thread.join(self._timeout + 1)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = self._connection = self._listener = self._local_port = None


def presented_host_key(host: str, port: int, timeout: float) -> str:
    """The SHA256 fingerprint ("SHA256:...", as ssh-keygen -l prints it) of the host key the bastion
    presents, read without logging in (for the first Test connection, which shows it to the user)."""
    bastion = f"{host}:{port}"

    async def fetch() -> asyncssh.SSHKey | None:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port, server_host_key_algs=HOST_KEY_ALGS, config=None), timeout
        )

    try:
        key = _run(fetch())
    except Exception as error:
        raise _failure(bastion, error, timeout) from error
    if key is None:
        raise SshFailed(f"the SSH bastion {bastion} presented no host key")
    return key.get_fingerprint("sha256")


def _failure(bastion: str, error: Exception, timeout: float) -> SshFailed:
    if isinstance(error, TimeoutError):  # before OSError, which it is a kind of
        return SshFailed(f"the SSH bastion {bastion} did not answer within {timeout:g} s")
    if isinstance(error, OSError):
        return SshFailed(f"cannot reach the SSH bastion {bastion}: {error}")
    if isinstance(error, asyncssh.Error):
        return SshFailed(f"the SSH bastion {bastion} failed: {error.reason}")
    return SshFailed(f"the SSH bastion {bastion} failed: {type(error).__name__}: {error}")


def _run(coroutine: Coroutine[Any, Any, asyncssh.SSHKey | None]) -> asyncssh.SSHKey | None:
    """asyncio.run on a thread of its own: the caller's thread may have an event loop, running or set."""
    with ThreadPoolExecutor(1, thread_name_prefix="ssh-host-key") as pool:
        return pool.submit(asyncio.run, coroutine).result()
