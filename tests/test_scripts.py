"""The developer scripts: ``scripts/test`` sizes its pytest workers from the machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def workers(env: dict[str, str]) -> str:
    return subprocess.run(
        [str(REPO / "scripts" / "test-workers")], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_pytest_workers_follow_the_cores() -> None:
    """Without JOBPULSE_TEST_WORKERS, scripts/test runs two pytest workers per usable core (the
    tests mostly wait on the servers they started)."""
    env = {k: v for k, v in os.environ.items() if k != "JOBPULSE_TEST_WORKERS"}
    assert workers(env) == str(2 * len(os.sched_getaffinity(0)))
    assert '"$(scripts/test-workers)"' in (REPO / "scripts" / "test").read_text()


def test_jobpulse_test_workers_still_overrides() -> None:
    """JOBPULSE_TEST_WORKERS names the worker count whatever the cores."""
    assert workers({**os.environ, "JOBPULSE_TEST_WORKERS": "7"}) == "7"
