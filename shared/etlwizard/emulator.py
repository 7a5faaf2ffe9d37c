"""The BigQuery emulator (bqemulator, DuckDB inside) as a child process, for the embedded stack."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BigQueryEmulator:
    """`with BigQueryEmulator(project, data_dir) as url:` runs the emulator until the block ends.
    With a data_dir its tables outlive the process; without, they live in memory."""

    def __init__(self, project: str, data_dir: Path | None = None, port: int | None = None,
                 log_path: Path | None = None):
        self.project = project
        self.data_dir = Path(data_dir) if data_dir else None
        self.port = port or free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = None

    def start(self) -> str:
        args = [sys.executable, "-m", "bqemulator", "start", "--project", self.project,
                "--rest-port", str(self.port), "--grpc-port", str(free_port()), "--log-level", "warning"]
        env = dict(os.environ)
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--persistent", "--data-dir", str(self.data_dir)]
            env["BQEMU_UPLOAD_STAGING_DIR"] = str(self.data_dir / "staging")
        else:
            args += ["--ephemeral"]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        return self.url

    def _wait_ready(self, seconds: float = 90) -> None:
        probe = f"{self.url}/bigquery/v2/projects/{self.project}/datasets"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigError(f"the BigQuery emulator exited at start-up (code {self._process.returncode})")
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

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
