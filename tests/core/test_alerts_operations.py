"""Operations alerts: a LOST worker alerts once across processes; deep queues and slow runs alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.alerts import Alerter
from core.backends.store.operations import operations_for
from core.models import Principal
from core.operations import FORGET_AFTER
from core.service import JobService, SubmitRequest
from tests.core.test_alerts import Receiver
from tests.support.services import BACKENDS, service_on
from workers.presence import WorkerPresence
from workers.runtime import Worker

ADMIN = Principal("root", "admin")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(params=BACKENDS)
async def service(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver
) -> AsyncIterator[JobService]:
    settings: dict[str, Any] = {
        "alert_webhook_url": receiver.url,
        "alert_check_interval_seconds": 3600,  # the tests check themselves
        "worker_heartbeat_seconds": 1.0,  # LOST after 3 s: an event loop stalled by a loaded machine stays ACTIVE
        "alert_queue_depth": 2,
        "alert_slow_seconds": 0.000001,
        "alert_min_samples": 2,
        "backoff_base_seconds": 0,
    }
    async with service_on(request, tmp_path, **settings) as service:
        yield service


async def _running(alerter: Alerter, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(alerter.run(stop))
    await asyncio.sleep(0)  # let it install its listener
    return task


async def test_lost_worker_alerts_once_across_processes(service: JobService, receiver: Receiver) -> None:
    """Two alerters (two processes) checking a LOST worker twice each make one alert."""
    record = WorkerPresence(Worker(service, types=["noop"])).record()
    silent = replace(record, last_seen_at=service.clock() - timedelta(seconds=30))
    await operations_for(service.store).save_worker(silent)
    stop = asyncio.Event()
    alerters = [Alerter(service), Alerter(service)]
    tasks = [await _running(alerter, stop) for alerter in alerters]
    for alerter in alerters * 2:
        await alerter.operations.check_workers()
    stop.set()
    await asyncio.gather(*tasks)
    [alert] = receiver.of("worker_lost")
    assert alert["figures"]["worker_id"] == record.id


async def test_restarted_worker_is_a_new_active_record(service: JobService, receiver: Receiver) -> None:
    """After a LOST record, a worker started again is listed ACTIVE beside it, and does not alert."""
    lost = WorkerPresence(Worker(service, types=["noop"])).record()
    await operations_for(service.store).save_worker(
        replace(lost, last_seen_at=service.clock() - timedelta(seconds=30))
    )
    worker = Worker(service, types=["noop"])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(20):  # a deadline poll: the worker's first heartbeat
            while True:
                if len(await operations_for(service.store).list_workers(service.clock() - FORGET_AFTER)) == 2:
                    break
                await asyncio.sleep(0.05)
        statuses = {
            w.id: w.status(service.clock()).value
            for w in await operations_for(service.store).list_workers(service.clock() - timedelta(hours=1))
        }
        assert statuses == {lost.id: "LOST", worker.worker_id: "ACTIVE"}
    finally:
        stop.set()
        await task


async def test_deep_queue_alerts(service: JobService, receiver: Receiver) -> None:
    """More messages waiting than ``alert_queue_depth`` make a ``queue_depth`` alert for that type."""
    for _ in range(3):
        await service.submit(ADMIN, SubmitRequest("noop", {}))
    stop = asyncio.Event()
    alerter = Alerter(service)
    task = await _running(alerter, stop)
    await alerter.check_queues()
    stop.set()
    await task
    [alert] = receiver.of("queue_depth")
    assert (alert["type"], alert["figures"]["waiting"]) == ("noop", 3)


async def test_slow_runs_alert(service: JobService, receiver: Receiver) -> None:
    """A type whose p95 run time is over ``alert_slow_seconds`` makes a ``slow`` alert."""
    for _ in range(2):
        await service.submit(ADMIN, SubmitRequest("sleep", {"seconds": 0.01}))
    stop = asyncio.Event()
    alerter = Alerter(service)
    task = await _running(alerter, stop)
    async with asyncio.timeout(30):
        await Worker(service, types=["sleep"], burst=True).run()
    stop.set()
    await task
    [alert] = receiver.of("slow")
    assert alert["type"] == "sleep"
