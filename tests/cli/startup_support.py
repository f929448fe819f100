"""Run ``jobpulse`` to its exit with an environment of the test's own, and read its one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.process import REPO, jobpulse_command

__all__ = ["environment_for", "one_line", "run_jobpulse"]


def environment_for(request: pytest.FixtureRequest, tmp_path: Path, mode: str) -> dict[str, str]:
    """``JOBPULSE_*`` for ``mode``: ``embedded`` (SQLite under ``tmp_path``) or ``distributed``."""
    if mode == "embedded":
        return {"JOBPULSE_DATA_DIR": str(tmp_path / "data")}
    env: dict[str, str] = request.getfixturevalue("distributed_env")
    return dict(env)


def run_jobpulse(
    *args: str, env: dict[str, str], timeout: float = 120, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """``jobpulse ARGS…`` as a user runs it, with only ``env``'s ``JOBPULSE_*`` variables, to its exit."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
    base.update({"PYTHONPATH": str(REPO), "COLUMNS": "220", "JOBPULSE_STARTUP_TIMEOUT": "0"})
    return subprocess.run(
        jobpulse_command(*args), env={**base, **env}, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a configuration error prints, after checking it is alone on stderr and exit 2."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jobpulse: "), done.stderr
    return lines[0]
