"""A failing resolver's log line names the error, and holds no payload, token or credential."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from api import errors as api_errors
from core.logs import configure_logging
from tests.api.helpers import ADMIN, Server, api_settings, make_jwt, run_server
from workers.registry import external_job_types

SECRET_NOTE = "payload-secret-3f9c1e"
SUBMIT = """
mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id } ... on UserError { code } }
}"""
CLAIM = "mutation($id: ID!) { claimJob(id: $id) { ... on JobClaim { token } } }"
HEARTBEAT = "mutation($jobToken: String!) { heartbeatJob(token: $jobToken) { __typename } }"


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logging as ``serve`` configures it off a terminal (JSON lines), written here; undone afterwards."""
    config = structlog.get_config()
    configure_logging("INFO", "json")
    written = io.StringIO()
    # Not cached: a logger bound to this configuration would outlive the test in this process.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(written), cache_logger_on_first_use=False)
    monkeypatch.setattr(api_errors, "log", structlog.get_logger("jobpulse.api"))  # not a cached one
    yield written
    structlog.configure(**config)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """An API server that also knows the external type ``render``."""
    async with run_server(api_settings(tmp_path / "data")) as running:
        for job_type in external_job_types("render:Renders a scene elsewhere"):
            running.service.registry.register(job_type)
        yield running


def resolver_failure(written: io.StringIO) -> str:
    """The one "graphql resolver failed" line written."""
    lines = [line for line in written.getvalue().splitlines() if "graphql resolver failed" in line]
    assert len(lines) == 1, lines
    return lines[0]


async def fail(*_: Any, **__: Any) -> Any:
    raise RuntimeError("store exploded")


async def test_a_failed_submit_logs_neither_payload_nor_credential(
    server: Server, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submit whose store write fails logs the error in under 4 KB, without its payload or the caller's JWT."""
    credential = make_jwt("alice")
    monkeypatch.setattr(server.service.store, "insert_many", fail)
    body = await server.graphql(credential, SUBMIT, input={"type": "noop", "payload": {"note": SECRET_NOTE}})
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    line = resolver_failure(json_logs)
    assert json.loads(line)["exception"][0]["exc_type"] == "RuntimeError"
    assert (SECRET_NOTE in line, credential in line, len(line.encode()) < 4096) == (False, False, True)


async def test_a_failed_heartbeat_logs_no_job_token(
    server: Server, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeatJob whose write fails logs the error in under 4 KB, without the job token."""
    job_id = await server.submit(ADMIN, "render", {"scene": SECRET_NOTE})
    token = (await server.data(ADMIN, CLAIM, id=job_id))["claimJob"]["token"]
    monkeypatch.setattr(server.service, "heartbeat", fail)
    body = await server.graphql(ADMIN, HEARTBEAT, jobToken=token)
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    line = resolver_failure(json_logs)
    assert (token in line, SECRET_NOTE in line, len(line.encode()) < 4096) == (False, False, True)
