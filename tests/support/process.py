"""Real ``jobpulse`` processes for end-to-end tests: start, wait until ready, kill -9, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["JobpulseProcess", "free_port", "jobpulse_command"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jobpulse_command(*args: str) -> list[str]:
    """The installed ``jobpulse`` console script, as a user runs it."""
    script = Path(sys.executable).parent / "jobpulse"
    return [str(script), *args]


class JobpulseProcess:
    """One ``jobpulse`` subprocess with its own environment and log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.args = args
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **env}
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> JobpulseProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            jobpulse_command(*self.args), env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()
        if self.port is not None:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()  # the caller never gets this process to stop: do not leave it running
                raise
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Poll /readyz until it answers 200 (a deadline, not a fixed sleep).

        Generous: a fresh interpreter importing the whole app takes seconds on a loaded machine,
        and a deadline costs nothing when the process is up sooner.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"jobpulse exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"jobpulse not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def restart(self) -> JobpulseProcess:
        self.kill()
        return self.start()


def serve_embedded(
    data_dir: Path, log_path: Path, api_keys: str, *, port: int | None = None, **env: str
) -> JobpulseProcess:
    """A started ``jobpulse serve`` on the embedded backends with the test job types and ``api_keys``."""
    port = port or free_port()
    environment = {
        "JOBPULSE_DATA_DIR": str(data_dir),
        "JOBPULSE_PORT": str(port),
        "JOBPULSE_API_KEYS": api_keys,
        "JOBPULSE_JOB_MODULES": "tests.support.jobtypes",
        "JOBPULSE_SHUTDOWN_GRACE_SECONDS": "1",
        "JOBPULSE_LOG_FORMAT": "json",
        **env,
    }
    return JobpulseProcess(["serve"], environment, log_path, port=port).start()
