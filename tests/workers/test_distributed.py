"""The worker's key behaviours on the distributed backends: MongoDB, SQS (moto) and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from core.backends import open_backends
from core.models import JobEventKind, JobStatus
from core.service import JobService
from core.settings import Settings
from tests.workers.conftest import ADMIN, TEST_MODULES, drain, kinds, on_event, reload, submit
from tests.workers.jobtypes import Latch
from workers.registry import load_registry
from workers.runtime import Worker


@pytest.fixture
async def service(distributed_settings: Callable[..., Settings]) -> AsyncIterator[JobService]:
    """A service on MongoDB, SQS and Redis, private to the test."""
    settings = distributed_settings(
        job_modules=TEST_MODULES, backoff_base_seconds=0, wait_time_seconds=1, shutdown_grace_seconds=0
    )
    registry = load_registry(settings)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues(registry.names)
        yield JobService(
            backends.store, backends.queue, backends.bus, registry, settings, transaction=backends.transaction
        )


async def test_noop_job_completes(service: JobService) -> None:
    """A noop job runs once and completes through STARTED then COMPLETED."""
    job = await submit(service, "noop", {"note": "distributed"})
    await drain(service, types=["noop"])
    done = await reload(service, job)
    assert (done.status, done.attempts, done.result) == (
        JobStatus.COMPLETED,
        1,
        {"ok": True, "note": "distributed"},
    )
    assert await kinds(service, job) == [JobEventKind.CREATED, JobEventKind.STARTED, JobEventKind.COMPLETED]


async def test_flaky_job_retries_then_exhausted_job_is_dead_lettered(service: JobService) -> None:
    """Retries go back through SQS, and a job out of attempts lands in its dead-letter queue."""
    flaky = await submit(service, "flaky", {"fail_times": 1})
    failing = await submit(service, "fail", {})
    await drain(service, types=["flaky", "fail"])
    assert ((await reload(service, flaky)).status, (await reload(service, flaky)).attempts) == (
        JobStatus.COMPLETED,
        2,
    )
    assert (await reload(service, failing)).status is JobStatus.FAILED
    assert (await service.queue.depths(["fail"]))["fail"].dead == 1


async def test_cancel_over_redis_stops_the_handler(
    service: JobService, latches: Callable[[str], Latch]
) -> None:
    """A cancel request published on Redis reaches the worker and stops the running handler."""
    latch = latches("redis-cancel")
    job = await submit(service, "latch", {"latch": "redis-cancel"})
    run = asyncio.create_task(drain(service, types=["latch"]))
    await latch.entered.wait()
    await service.cancel(ADMIN, job.id)
    await run
    assert latch.cancelled == 1
    assert (await reload(service, job)).status is JobStatus.CANCELLED


async def test_graceful_stop_gives_the_job_back_to_sqs(
    service: JobService, latches: Callable[[str], Latch]
) -> None:
    """A job interrupted by shutdown is PENDING again and another worker finishes it."""
    latch = latches("sqs-stop")
    job = await submit(service, "latch", {"latch": "sqs-stop"})
    stop = asyncio.Event()
    run = asyncio.create_task(Worker(service, types=["latch"]).run(stop))
    await latch.entered.wait()
    stop.set()
    await run
    assert ((await reload(service, job)).status, (await reload(service, job)).attempts) == (
        JobStatus.PENDING,
        0,
    )
    latch.opened.set()
    completed = on_event(service, job.id, JobEventKind.COMPLETED)
    await drain(service, types=["latch"])
    await completed.wait()
    assert (await reload(service, job)).attempts == 1
