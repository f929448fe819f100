"""Fixtures for the end-to-end tests: ``cluster``, real ``jobpulse`` processes on the distributed backends.

``cluster.api()``, ``cluster.worker(...)`` and ``cluster.serve()`` describe processes sharing this
test's MongoDB database, SQS queue prefix and Redis channel prefix; ``cluster.start(*processes)``
launches them together and returns once every API answers ``/readyz``. Whatever is still running
when the test ends is stopped. ``sqs_proxy`` puts a ``TcpProxy`` in front of moto.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import JobpulseProcess, free_port
from tests.support.tcp_proxy import TcpProxy

__all__ = ["ADMIN", "ALICE", "BOB", "Cluster"]

ADMIN, ALICE, BOB = "e2e-admin", "e2e-alice", "e2e-bob"
KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user,{BOB}=bob:user"

#: what every process of a cluster gets, on top of the test's distributed environment
BASE_ENV = {
    "JOBPULSE_API_KEYS": KEYS,
    "JOBPULSE_JOB_MODULES": "tests.support.jobtypes,tests.support.holdjob",
    "JOBPULSE_BACKOFF_BASE_SECONDS": "0.05",
    "JOBPULSE_SHUTDOWN_GRACE_SECONDS": "1",
    "JOBPULSE_WAIT_TIME_SECONDS": "1",
    "JOBPULSE_LOG_FORMAT": "json",
}
#: the event a worker's JSON log has once it runs
WORKER_STARTED = "worker started"


def logged_events(output: str) -> set[str]:
    """The ``event`` of every JSON log line in a process's output (other lines are skipped)."""
    events = set()
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            events.add(record["event"])
    return events


def wait_worker_started(process: JobpulseProcess, timeout: float = 90.0) -> None:
    """Poll a worker's log until it says it started (its queues exist; it receives from now on)."""
    deadline = time.monotonic() + timeout
    while WORKER_STARTED not in logged_events(process.output()):
        assert process.proc is not None
        if process.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.proc.returncode}:\n{process.output()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker did not start within {timeout}s:\n{process.output()}")
        time.sleep(0.05)


class Cluster:
    """The ``jobpulse`` processes of one test, on its own backends (``env``)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**env, **BASE_ENV}
        self.logs = logs
        self.processes: list[JobpulseProcess] = []

    def _process(self, args: list[str], env: dict[str, str | None], port: int | None) -> JobpulseProcess:
        merged = {**self.env, **env}
        if port is not None:
            merged["JOBPULSE_PORT"] = str(port)
        wanted = {key: value for key, value in merged.items() if value is not None}
        name = f"{len(self.processes) + 1}-{args[0]}"
        process = JobpulseProcess(args, wanted, self.logs / f"{name}.log")
        # Only this test's settings: none inherited from the environment pytest runs in.
        for key in [k for k in process.env if k.startswith("JOBPULSE_") and k not in wanted]:
            del process.env[key]
        process.port = port
        self.processes.append(process)
        return process

    def api(self, **env: str | None) -> JobpulseProcess:
        """``jobpulse api`` (API and sweeper); ``env`` adds or (with ``None``) removes variables."""
        return self._process(["api"], env, free_port())

    def serve(self, **env: str | None) -> JobpulseProcess:
        """``jobpulse serve``: API, sweeper and workers in one process."""
        return self._process(["serve"], env, free_port())

    def worker(self, *args: str, **env: str | None) -> JobpulseProcess:
        """``jobpulse worker ARGS…`` (workers and sweeper)."""
        return self._process(["worker", *args], env, None)

    def start(self, *processes: JobpulseProcess) -> None:
        """Launch the processes together; return once each API answers ``/readyz`` and each worker runs."""
        for process in processes:
            port, process.port = process.port, None
            process.start()  # without a port, start does not wait
            process.port = port
        for process in processes:
            if process.port is not None:
                process.wait_ready()
            else:
                wait_worker_started(process)

    def output(self) -> str:
        """Every process's log, for a failure message."""
        return "\n".join(f"--- {p.log_path.name}\n{p.output()[-6000:]}" for p in self.processes)

    def close(self) -> None:
        """SIGTERM to all at once (the graceful path), then wait for each; kill -9 what hangs."""
        running = [p.proc for p in self.processes if p.proc is not None and p.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def cluster(distributed_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    """Processes on this test's MongoDB database, SQS queues and Redis channels; stopped afterwards."""
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(distributed_env, logs)
    yield running
    running.close()
    print(running.output())  # pytest shows it only when the test failed


@pytest.fixture
def sqs_proxy(sqs_endpoint: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of moto that the test may cut off (moto keeps its queues meanwhile).

    Request it before ``cluster``, so that it outlives the processes that use it.
    """
    with TcpProxy(int(sqs_endpoint.rsplit(":", 1)[1])) as proxy:
        yield proxy
