"""``JOBPULSE_RATE_LIMIT`` on every way in, on the embedded and the distributed backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.ports import JobFilter
from core.settings import Settings
from tests.api.helpers import ADMIN, ALICE, BOB, Server, api_settings
from tests.api.served import serve, server_on
from tests.support.services import BACKENDS

# A day: the sliding window's edge (midnight UTC) is never crossed within one test in practice.
LIMIT = "3/day"

SUBMIT = """
mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { ... on Job { id } ... on UserError { code message field retryAfterSeconds } }
}
"""
SUBMIT_MANY = """
mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { ... on Job { id } ... on UserError { code retryAfterSeconds } }
}
"""
SUBMIT_FLOW = """
mutation($input: SubmitFlowInput!) {
  submitFlow(input: $input) { ... on Flow { id } ... on UserError { code retryAfterSeconds } }
}
"""
NOOP = {"type": "noop", "payload": {}}


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server limiting each subject to 3 submits a day."""
    async with server_on(request, tmp_path, rate_limit=LIMIT) as running:
        yield running


async def submit(server: Server, token: str = ALICE) -> dict[str, Any]:
    data = await server.data(token, SUBMIT, input=NOOP)
    answer: dict[str, Any] = data["submitJob"]
    return answer


async def stored(server: Server) -> int:
    return await server.service.store.count_jobs(JobFilter())


async def test_a_submit_over_the_limit_is_rate_limited_and_creates_nothing(server: Server) -> None:
    """The fourth submit of a subject within the period is RATE_LIMITED with retryAfterSeconds, and no job."""
    for _ in range(3):
        assert "id" in await submit(server)
    refused = await submit(server)
    assert refused["code"] == "RATE_LIMITED"
    assert 0 < refused["retryAfterSeconds"] <= 86_400
    assert refused["field"] is None
    assert await stored(server) == 3


async def test_concurrent_submits_take_exactly_the_limit(server: Server) -> None:
    """Nine submits at once, with room for three: three jobs, six RATE_LIMITED (in Redis they are
    counted together while a count is in flight, and one by one when the sum does not fit)."""
    answers = await asyncio.gather(*(submit(server) for _ in range(9)))
    assert (
        sorted("id" if "id" in answer else answer["code"] for answer in answers)
        == ["RATE_LIMITED"] * 6 + ["id"] * 3
    )
    assert await stored(server) == 3


async def test_refused_jobs_are_counted_in_the_metrics(server: Server) -> None:
    """jobpulse_submits_rate_limited_total counts the jobs refused: one submit, then a batch of two."""
    for _ in range(3):
        await submit(server)
    await submit(server)
    await server.data(ALICE, SUBMIT_MANY, inputs=[NOOP, NOOP])
    async with server.http(ADMIN) as client:
        exposition = (await client.get("/metrics")).text
    assert "jobpulse_submits_rate_limited_total 3.0" in exposition


async def test_the_limit_is_per_subject(server: Server) -> None:
    """One subject over its limit does not hold back another."""
    for _ in range(3):
        await submit(server, ALICE)
    assert (await submit(server, ALICE))["code"] == "RATE_LIMITED"
    assert "id" in await submit(server, BOB)


async def test_submit_jobs_counts_each_input_and_a_batch_over_creates_nothing(server: Server) -> None:
    """submitJobs takes one per input; a batch that does not fit is refused whole, input by input."""
    data = await server.data(ALICE, SUBMIT_MANY, inputs=[NOOP, NOOP])
    assert all("id" in answer for answer in data["submitJobs"])
    data = await server.data(ALICE, SUBMIT_MANY, inputs=[NOOP, NOOP])
    assert [answer["code"] for answer in data["submitJobs"]] == ["RATE_LIMITED", "RATE_LIMITED"]
    assert all(answer["retryAfterSeconds"] > 0 for answer in data["submitJobs"])
    assert await stored(server) == 2
    assert "id" in await submit(server)  # the refused batch took nothing
    assert (await submit(server))["code"] == "RATE_LIMITED"


async def test_submit_flow_counts_each_job(server: Server) -> None:
    """A flow of four jobs is over a limit of three: refused, nothing created."""
    jobs = [{"key": f"k{i}", "job": NOOP, "after": []} for i in range(4)]
    data = await server.data(ALICE, SUBMIT_FLOW, input={"name": "big", "jobs": jobs})
    assert data["submitFlow"]["code"] == "RATE_LIMITED"
    assert await stored(server) == 0


async def test_rest_answers_429_with_retry_after(server: Server) -> None:
    """POST /api/v1/jobs over the limit is 429 RATE_LIMITED with a Retry-After header, and creates nothing."""
    async with server.http(ALICE) as client:
        for _ in range(3):
            assert (await client.post("/api/v1/jobs", json=NOOP)).status_code == 202
        response = await client.post("/api/v1/jobs", json=NOOP)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert int(response.headers["Retry-After"]) >= 1
    assert await stored(server) == 3


async def test_without_the_setting_nothing_is_limited(tmp_path: Path) -> None:
    """JOBPULSE_RATE_LIMIT unset: many submits of one subject all succeed."""
    async with serve(api_settings(tmp_path / "data")) as running:
        data = await running.data(ALICE, SUBMIT_MANY, inputs=[NOOP] * 50)
        assert all("id" in answer for answer in data["submitJobs"])


async def test_two_api_processes_share_the_limit_through_redis(
    distributed_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two API apps on one Redis count one subject's submits together."""
    base = api_settings(tmp_path / "data").model_dump(
        include={"api_keys", "jwt_secret", "max_payload_bytes", "max_request_bytes", "shutdown_grace_seconds"}
    )
    settings = distributed_settings(**base, data_dir=tmp_path / "data", rate_limit=LIMIT)
    async with serve(settings) as first, serve(settings) as second:
        assert "id" in await submit(first)
        assert "id" in await submit(second)
        assert "id" in await submit(first)
        assert (await submit(second))["code"] == "RATE_LIMITED"
        assert (await submit(first))["code"] == "RATE_LIMITED"
        assert await stored(first) == 3
