"""A real ``jobpulse serve`` for the CLI tests, and a way to run the ``jobpulse`` command against it."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.graphql import gql_http
from tests.support.process import REPO, JobpulseProcess, jobpulse_command, serve_embedded

ADMIN, ALICE, BOB = "cli-admin", "cli-alice", "cli-bob"
KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user,{BOB}=bob:user"

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobpulseProcess]:
    """``jobpulse serve`` with the test job types and an admin and two users."""
    tmp = tmp_path_factory.mktemp("cli")
    process = serve_embedded(tmp / "data", tmp / "serve.log", KEYS)
    yield process
    process.terminate()


@pytest.fixture
def cli(server: JobpulseProcess) -> RunCli:
    """Run ``jobpulse ARGS…`` as a user would, with JOBPULSE_URL set and the given token."""

    def run(*args: str, token: str | None = ADMIN, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
        env.update({"JOBPULSE_URL": server.url, "PYTHONPATH": str(REPO), "COLUMNS": "220"})
        if token is not None:
            env["JOBPULSE_TOKEN"] = token
        return subprocess.run(
            jobpulse_command(*args), env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )

    return run


SUBMIT = """mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id status } ... on UserError { code message } }
}"""


def submit(server: JobpulseProcess, token: str, **job_input: Any) -> str:
    """Submit a job over HTTP; return its id."""
    result = gql_http(server.url, token, SUBMIT, {"input": job_input})["data"]["submitJob"]
    assert result["__typename"] == "Job", result
    job_id: str = result["id"]
    return job_id


def wait_for_status(
    server: JobpulseProcess, token: str, job_id: str, status: str, timeout: float = 30
) -> None:
    """Poll the job until it has ``status`` (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = gql_http(server.url, token, "query($id: ID!) { job(id: $id) { status } }", {"id": job_id})
        if seen["data"]["job"]["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {status}: {seen}")


JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def job_rows(stdout: str) -> list[list[str]]:
    """The rows of a ``jobpulse jobs`` table that show a job, split into cells (they start with its id)."""
    rows = [line.split() for line in stdout.splitlines()]
    return [row for row in rows if row and JOB_ID.match(row[0])]
