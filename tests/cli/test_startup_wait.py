"""A backend that is down at start is waited for (``JOBPULSE_STARTUP_TIMEOUT``), with a line saying so.

Only the distributed mode has a server to wait for: the embedded backends are files.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.cli.startup_support import run_jobpulse
from tests.support.process import JobpulseProcess, free_port
from tests.support.servers import RedisServer


def _wait_for_output(process: JobpulseProcess, text: str, timeout: float = 60) -> None:
    """Poll the process's log until it holds ``text`` (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while text not in process.output():
        assert process.proc is not None and process.proc.poll() is None, process.output()
        assert time.monotonic() < deadline, process.output()
        time.sleep(0.05)


def test_a_backend_down_at_start_is_waited_for_then_the_api_starts(
    distributed_env: dict[str, str], own_redis: RedisServer, tmp_path: Path
) -> None:
    """``api`` with Redis down says it waits for Redis, and serves once Redis is up."""
    own_redis.stop()
    port = free_port()
    env = {
        **distributed_env,
        "JOBPULSE_REDIS_URL": own_redis.url,
        "JOBPULSE_PORT": str(port),
        "JOBPULSE_STARTUP_TIMEOUT": "120",
        "JOBPULSE_SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = JobpulseProcess(["api"], env, tmp_path / "api.log").start()
    try:
        _wait_for_output(process, f"jobpulse: waiting up to 120s for Redis at {own_redis.url}")
        own_redis.start()
        process.port = port
        process.wait_ready(timeout=60)
    finally:
        process.terminate()


def test_a_backend_still_down_after_the_timeout_is_the_one_line(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """``worker`` with Redis down for the whole timeout prints the waiting line, then the error, exit 2."""
    own_redis.stop()
    # Only the bus is a server here, so the lines can only be about Redis.
    env = {
        "JOBPULSE_DATA_DIR": str(tmp_path / "data"),
        "JOBPULSE_REDIS_URL": own_redis.url,
        "JOBPULSE_STARTUP_TIMEOUT": "1",
    }
    done = run_jobpulse("worker", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    waiting, error = done.stderr.strip().splitlines()
    assert waiting.startswith("jobpulse: waiting up to 1s for Redis at ")
    assert error.startswith(
        f"jobpulse: Redis at {own_redis.url} (the bus, JOBPULSE_REDIS_URL) did not answer within 1s"
    )
    assert "worker started" not in done.stdout
