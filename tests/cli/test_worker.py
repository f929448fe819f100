"""``jobpulse worker``'s own refusals at start-up."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.process import REPO, jobpulse_command


def run_worker(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``jobpulse worker ARGS…`` on embedded backends in ``data_dir``, to its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
    env.update({"PYTHONPATH": str(REPO), "JOBPULSE_DATA_DIR": str(data_dir), "COLUMNS": "220"})
    return subprocess.run(
        jobpulse_command("worker", *args), env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_a_metrics_port_in_use_is_a_clear_error_before_any_job_runs(tmp_path: Path) -> None:
    """The metrics port is bound before the workers start: taken, the worker says so and exits 2."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_worker(tmp_path, "--metrics-port", str(port))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot serve metrics on port {port}" in done.stderr
    assert "worker started" not in done.stdout + done.stderr


def test_a_metrics_port_out_of_range_is_refused(tmp_path: Path) -> None:
    """A port outside 1–65535 is refused as the option's own error."""
    done = run_worker(tmp_path, "--metrics-port", "70000")
    assert done.returncode == 2
    assert "Invalid value for '--metrics-port'" in done.stderr
