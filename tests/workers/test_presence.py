"""The workers registry: a running worker is listed, counts its attempts, drains, leaves, or is LOST."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from core.backends.store.operations import operations_for
from core.models import Principal
from core.operations import FORGET_AFTER, WorkerRecord, WorkerStatus
from core.service import JobService, SubmitRequest
from tests.support.services import BACKENDS, service_on
from workers.presence import WorkerPresence
from workers.runtime import Worker

ADMIN = Principal("root", "admin")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with service_on(
        request, tmp_path, worker_heartbeat_seconds=1.0, wait_time_seconds=0.2, backoff_base_seconds=0
    ) as service:
        yield service


async def _listed(service: JobService) -> list[WorkerRecord]:
    return await operations_for(service.store).list_workers(service.clock() - FORGET_AFTER)


async def _until_listed(service: JobService, worker_id: str, running: int = 0) -> WorkerRecord:
    """Poll the registry (deadline: 20 s) until ``worker_id`` is listed with ``running`` jobs."""
    async with asyncio.timeout(20):
        while True:
            for record in await _listed(service):
                if record.id == worker_id and len(record.running) == running:
                    return record
            await asyncio.sleep(0.05)


async def test_running_worker_is_listed_active(service: JobService) -> None:
    """A running worker's record names its types and concurrency, and it is ACTIVE."""
    worker = Worker(service, types=["noop"], concurrency=3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        record = await _until_listed(service, worker.worker_id)
        assert (record.types, record.concurrency) == (("noop",), 3)
        assert record.status(service.clock()) is WorkerStatus.ACTIVE
    finally:
        stop.set()
        await task


async def test_stopped_worker_leaves_the_registry(service: JobService) -> None:
    """A worker that stops gracefully removes its record."""
    worker = Worker(service, types=["noop"])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await _until_listed(service, worker.worker_id)
    stop.set()
    await task
    assert [r.id for r in await _listed(service)] == []


async def test_record_lists_the_running_job(service: JobService) -> None:
    """While a job runs, the worker's record lists it."""
    job = await service.submit(ADMIN, SubmitRequest("sleep", {"seconds": 30}))
    worker = Worker(service, types=["sleep"])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        record = await _until_listed(service, worker.worker_id, running=1)
        assert record.running == (job.id,)
    finally:
        await service.cancel(ADMIN, job.id)
        stop.set()
        await task


async def test_worker_counts_processed_and_failed_attempts(service: JobService) -> None:
    """Two completed jobs and one that failed twice count four finished attempts, two of them failed."""
    for request in (
        SubmitRequest("noop", {}),
        SubmitRequest("noop", {}),
        SubmitRequest("fail", {}, max_attempts=2),
    ):
        await service.submit(ADMIN, request)
    worker = Worker(service, types=["noop", "fail"], burst=True)
    async with asyncio.timeout(30):
        await worker.run()
    assert worker.presence is not None
    assert (worker.presence.processed, worker.presence.failed) == (4, 2)


async def test_silent_worker_is_lost(service: JobService) -> None:
    """A record not heartbeated for three intervals reads LOST."""
    record = replace(
        WorkerPresence(Worker(service, types=["noop"])).record(),
        last_seen_at=service.clock() - timedelta(seconds=10),
    )
    await operations_for(service.store).save_worker(record)
    [listed] = await _listed(service)
    assert listed.id == record.id
    assert listed.status(service.clock()) is WorkerStatus.LOST
