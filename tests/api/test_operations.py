"""GraphQL operations fields: ``workers``, ``statsHistory``, ``Job.attemptHistory`` and ``estimatedCompletion``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from core.stats_history import run_stats_recorder
from tests.api.helpers import ADMIN, ALICE, API_KEYS, JWT_SECRET, Server, api_settings, run_server
from tests.support.services import BACKENDS
from workers.runtime import Worker

WORKERS = "{ workers { id host pid version types concurrency status processed failed running { id } } }"
HISTORY = "query($t: String) { statsHistory(bucketSeconds: 3600, type: $t) { at submitted completed failed runSecondsP50 } }"
JOB = "query($id: ID!) { job(id: $id) { status estimatedCompletion attemptHistory { number worker outcome error startedAt endedAt } } }"


async def _poll(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll until ``condition`` holds; a deadline of 60 s (generous: the test machine is shared)."""
    async with asyncio.timeout(60):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server on each kind of backends, recording stats, with short heartbeats."""
    overrides: dict[str, Any] = {
        "worker_heartbeat_seconds": 1.0,  # LOST after 3 s: an event loop stalled by a loaded machine stays ACTIVE
        "stats_flush_seconds": 0.1,
        "backoff_base_seconds": 0,
        "wait_time_seconds": 0.2,
    }
    if request.param == "embedded":
        settings = api_settings(tmp_path / "data", **overrides)
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        settings = make(api_keys=API_KEYS, jwt_secret=JWT_SECRET, shutdown_grace_seconds=1, **overrides)
    async with run_server(settings, background=[run_stats_recorder]) as running:
        yield running


async def test_workers_lists_a_running_worker(server: Server) -> None:
    """A worker running jobs is listed ACTIVE, with its process, types and running jobs."""
    job_id = await server.submit(ADMIN, "sleep", {"seconds": 30})
    worker = Worker(server.service, types=["sleep"], concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def running() -> bool:
            listed = (await server.data(ADMIN, WORKERS))["workers"]
            return bool(listed) and listed[0]["running"] == [{"id": job_id}]

        await _poll(running)
        [listed] = (await server.data(ADMIN, WORKERS))["workers"]
        assert (listed["id"], listed["status"], listed["types"], listed["concurrency"]) == (
            worker.worker_id, "ACTIVE", ["sleep"], 2
        )  # fmt: skip
    finally:
        await server.data(ADMIN, "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", id=job_id)
        stop.set()
        await task


@pytest.mark.parametrize("query", [WORKERS, HISTORY])
async def test_operations_queries_are_for_admins(server: Server, query: str) -> None:
    """A user asking for ``workers`` or ``statsHistory`` gets FORBIDDEN."""
    body = await server.graphql(ALICE, query)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_stats_history_has_the_jobs_that_ran(server: Server) -> None:
    """After jobs ran, the current hour's bucket counts them (from the stored per-minute rows)."""
    for _ in range(2):
        await server.submit(ADMIN, "noop")
    async with asyncio.timeout(30):
        await Worker(server.service, types=["noop"], burst=True).run()

    async def counted() -> bool:
        buckets = (await server.data(ADMIN, HISTORY, t="noop"))["statsHistory"]
        return sum(b["completed"] for b in buckets) == 2

    await _poll(counted)
    buckets = (await server.data(ADMIN, HISTORY, t="noop"))["statsHistory"]
    assert sum(b["submitted"] for b in buckets) == 2
    assert buckets[-1]["runSecondsP50"] is not None


async def test_attempt_history_of_a_retried_job(server: Server) -> None:
    """A job that failed twice then passed shows three attempts with their outcomes."""
    job_id = await server.submit(ADMIN, "flaky", {"fail_times": 2})
    async with asyncio.timeout(30):
        await Worker(server.service, types=["flaky"], burst=True).run()
    job = (await server.data(ADMIN, JOB, id=job_id))["job"]
    assert [(a["number"], a["outcome"]) for a in job["attemptHistory"]] == [
        (1, "FAILED"), (2, "FAILED"), (3, "COMPLETED")
    ]  # fmt: skip
    assert job["attemptHistory"][0]["error"] is not None
    assert job["estimatedCompletion"] is None


async def test_estimated_completion_of_a_job_in_progress(server: Server) -> None:
    """A PROCESSING job with progress has an estimated completion; its attempt is RUNNING."""
    job_id = await server.submit(ADMIN, "noop")
    claim = await server.start(job_id)
    await server.service.progress(claim, 25, None)
    job = (await server.data(ADMIN, JOB, id=job_id))["job"]
    assert job["status"] == "PROCESSING" and job["estimatedCompletion"] is not None
    assert [(a["outcome"], a["endedAt"]) for a in job["attemptHistory"]] == [("RUNNING", None)]
