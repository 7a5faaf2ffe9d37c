"""The BigQuery emulator (bqemulator, DuckDB inside) as a child process, for the embedded stack.

It runs without its time-travel snapshots: bqemulator copies a whole table (CREATE TABLE AS SELECT)
after every write to it, so a run appending N files to a staging table would cost O(N²) copying,
and nothing here reads FOR SYSTEM_TIME AS OF. Its DuckDB may store inserted rows out of order, as
BigQuery promises no order without ORDER BY: a load or MERGE then takes about a third less CPU.
Started as `python -m etlwizard.emulator start ...`.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .secrets import private_dir, private_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BigQueryEmulator:
    """`with BigQueryEmulator(project, data_dir) as url:` runs the emulator until the block ends.
    With a data_dir its tables outlive the process; without, they live in memory."""

    def __init__(
        self, project: str, data_dir: Path | None = None, port: int | None = None, log_path: Path | None = None
    ):
        self.project = project
        self.data_dir = Path(data_dir).resolve() if data_dir else None  # the child runs elsewhere
        self.port = port or free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> str:
        args = [
            sys.executable,
            "-m",
            __name__,
            "start",
            "--project",
            self.project,
            "--rest-port",
            str(self.port),
            "--grpc-port",
            str(free_port()),
            "--log-level",
            "warning",
        ]
        env = dict(os.environ)  # etlwizard is installed (pip install -e .): the child imports it too
        if self.data_dir:
            private_dir(self.data_dir)
            args += ["--persistent", "--data-dir", str(self.data_dir)]
            env["BQEMU_UPLOAD_STAGING_DIR"] = str(self.data_dir / "staging")
        else:
            args += ["--ephemeral"]
        # DuckDB spills large statements to .tmp/ under its working directory: not the caller's
        self._workdir = tempfile.TemporaryDirectory(prefix="etl-emulator-")
        log_fd = private_file(self.log_path, os.O_WRONLY | os.O_APPEND) if self.log_path else None
        with os.fdopen(log_fd, "ab") if log_fd is not None else open(os.devnull, "ab") as log:
            # The child keeps its own copy of the log open. umask: the tables and staging files it
            # writes are its owner's only, as the rest of the data directory (secrets.private_dir).
            self._process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._workdir.name,
                preexec_fn=_die_with_parent,
                umask=0o077,
            )
        self._wait_ready(self._process)
        return self.url

    def _wait_ready(self, process: "subprocess.Popen[bytes]", seconds: float = 90) -> None:
        probe = f"{self.url}/bigquery/v2/projects/{self.project}/datasets"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ConfigError(f"the BigQuery emulator exited at start-up (code {process.returncode})")
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ConfigError(f"the BigQuery emulator did not answer on {self.url} within {seconds:.0f} s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel ends it when the process that started it dies, even
    by SIGKILL, so no orphan keeps holding the data directory's DuckDB file (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _serve() -> None:
    """bqemulator's command line, with automatic snapshots off and DuckDB free to insert rows out of
    order (see the module's docstring)."""
    from bqemulator.cli import main
    from bqemulator.storage.engine import DuckDBEngine
    from bqemulator.versioning.snapshots import SnapshotManager

    capture = SnapshotManager.capture

    def user_snapshots_only(
        self: SnapshotManager, project_id: str, dataset_id: str, table_id: str, *, kind: str = "AUTO"
    ) -> Any:
        return None if kind == "AUTO" else capture(self, project_id, dataset_id, table_id, kind=kind)

    pragmas = DuckDBEngine._apply_session_pragmas

    def unordered(self: DuckDBEngine) -> None:
        pragmas(self)
        self.connection.execute("SET preserve_insertion_order = false")

    SnapshotManager.capture = user_snapshots_only  # type: ignore[method-assign]
    DuckDBEngine._apply_session_pragmas = unordered  # type: ignore[method-assign]
    main()


if __name__ == "__main__":
    _serve()
