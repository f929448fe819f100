"""``examples/rest_client.py``: the httpx script on the REST routes, run as a user would."""

from __future__ import annotations

import subprocess
import sys

from tests.js.conftest import ALICE
from tests.support.process import REPO, JobpulseProcess


def test_rest_client_example_submits_and_waits(served: JobpulseProcess) -> None:
    """The script submits a job, polls its Location until it ends, and prints it COMPLETED."""
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "rest_client.py"), served.url, ALICE],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id, status, result = done.stdout.strip().split(" ", 2)
    assert (status, result) == ("COMPLETED", "{'ok': True, 'note': 'hi'}")
    assert len(job_id) == 36
