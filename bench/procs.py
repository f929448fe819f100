"""Processes for the benchmarks: jobpulse and the baselines' servers, CPU and memory read from /proc.

Every server runs as its own OS process on a free port of 127.0.0.1; every figure measures the
CPU each process used (from ``/proc/<pid>/stat``, all threads) so a reader can tell whether the
server or the load generator was the limit.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
JOBPULSE = str(Path(PYTHON).parent / "jobpulse")
TOKEN = "bench-admin-token"
LOG_DIR = REPO / "bench" / ".data" / "logs"
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(REPO))
from tests.support.servers import (  # noqa: E402  (the tests' own Redis, moto and SecantusDB)
    AWS_TEST_ENV,
    MongoServer,
    MotoServer,
    RedisServer,
    free_port,
)

__all__ = [
    "AWS_TEST_ENV",
    "PYTHON",
    "REPO",
    "TOKEN",
    "CpuMeter",
    "MongoServer",
    "MotoServer",
    "Proc",
    "RedisServer",
    "free_port",
    "jobpulse",
    "quiet_machine",
    "raise_nofile",
    "rss_kib",
    "scratch_dir",
]


def raise_nofile() -> None:
    """Soft open-file limit up to the hard one (figures 6 and 7 hold 10,000+ sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process, ours or not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def quiet_machine(max_wait: float = 120.0, threshold: float = 15.0) -> float:
    """Wait (up to ``max_wait``) for a second in which the machine is under ``threshold`` % busy.

    Other people's test runs share these two cores; a figure measured under them is not this
    code's figure. Returns the last second's busy % (of one core) for the record.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = 100 * (machine_busy_seconds() - before)
        if busy < threshold or time.monotonic() > deadline:
            return busy


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuMeter:
    """CPU used by some processes between ``start`` and ``stop``, as % of one core."""

    def __init__(self, **pids: int | list[int]) -> None:
        self.pids = {name: (p if isinstance(p, list) else [p]) for name, p in pids.items()}
        self.started = 0.0
        self.before: dict[str, float] = {}
        self.percent: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        sample = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}
        sample["machine"] = machine_busy_seconds()
        return sample

    def start(self) -> CpuMeter:
        self.before, self.started = self._sample(), time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        after, wall = self._sample(), time.monotonic() - self.started
        self.percent = {n: 100 * (after[n] - self.before[n]) / wall for n in after}
        return self.percent

    def text(self) -> str:
        return ", ".join(f"{name} {pct:.0f}%" for name, pct in self.percent.items())


class Proc:
    """One child process with its output in a log file; stopped with SIGTERM (then SIGKILL)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        stdout: int | None = None,
        stdin: int | None = None,
    ) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                args,
                env=full_env,
                cwd=cwd,
                stdout=stdout if stdout is not None else log,
                stderr=log,
                stdin=stdin,
                preexec_fn=raise_nofile,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Poll ``url`` until it answers 200 (a deadline, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.output()}")


def jobpulse_env(data_dir: Path, port: int | None = None, **extra: str) -> dict[str, str]:
    """Settings a user would set: a data dir, a key, the test job types (``noop`` etc.)."""
    env = {
        "JOBPULSE_DATA_DIR": str(data_dir),
        "JOBPULSE_API_KEYS": f"{TOKEN}=bench:admin",
        "JOBPULSE_JOB_MODULES": "tests.support.jobtypes",
        **AWS_TEST_ENV,
    }
    if port is not None:
        env["JOBPULSE_HOST"], env["JOBPULSE_PORT"] = "127.0.0.1", str(port)
    env.update(extra)
    return env


def jobpulse(command: str, name: str, data_dir: Path, *args: str, **extra: str) -> tuple[Proc, str]:
    """Start ``jobpulse <command>`` (api, serve or worker); for servers, wait for /readyz."""
    port = free_port() if command in ("api", "serve") else None
    proc = Proc(name, [JOBPULSE, command, *args], jobpulse_env(data_dir, port, **extra))
    url = f"http://127.0.0.1:{port}"
    if port is not None:
        proc.wait_http(f"{url}/readyz")
    return proc, url


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory on the same disk as the repo (so fsync costs what it costs there)."""
    base = REPO / "bench" / ".data" / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
