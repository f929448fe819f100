"""Stopping a worker: promptly, gracefully, and without losing or double-counting a job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from core.errors import BackendUnavailableError
from core.models import JobEventKind, JobStatus
from core.ports import Delivery
from tests.workers.conftest import MakeService, drain, events, on_event, reload, submit
from tests.workers.jobtypes import Latch
from workers.runtime import Worker


async def test_graceful_stop_gives_running_jobs_back(
    make_service: MakeService, latches: Callable[[str], Latch]
) -> None:
    """Jobs still running after the grace period go back PENDING, uncounted, and another worker runs them."""
    service = await make_service(shutdown_grace_seconds=0)
    latch = latches("shutdown")
    jobs = [await submit(service, "latch", {"latch": "shutdown"}) for _ in range(2)]
    stop = asyncio.Event()
    run = asyncio.create_task(Worker(service, concurrency=2).run(stop))
    await latch.entered_by(2).wait()
    stop.set()
    await run
    for job in jobs:
        given_back = await reload(service, job)
        assert (given_back.status, given_back.attempts, given_back.lease_owner) == (
            JobStatus.PENDING,
            0,
            None,
        )
        last = (await events(service, job))[-1]
        assert (last.kind, last.message) == (JobEventKind.RETRYING, "worker shutting down")
    assert latch.cancelled == 2
    assert (await service.queue.depths(["latch"]))["latch"].ready == 2
    # Another worker picks them up at once and finishes them.
    latch.opened.set()
    await drain(service)
    for job in jobs:
        done = await reload(service, job)
        assert (done.status, done.attempts) == (JobStatus.COMPLETED, 1)


async def test_graceful_stop_lets_running_jobs_finish_within_the_grace(
    make_service: MakeService, latches: Callable[[str], Latch]
) -> None:
    """A job that finishes within the grace period completes normally after stop is set."""
    service = await make_service(shutdown_grace_seconds=30)
    latch = latches("finish")
    job = await submit(service, "latch", {"latch": "finish"})
    stop = asyncio.Event()
    run = asyncio.create_task(Worker(service).run(stop))
    await latch.entered.wait()
    stop.set()
    await asyncio.wait({run}, timeout=0.2)
    assert not run.done(), "the worker must wait for its running job"
    latch.opened.set()
    await run
    done = await reload(service, job)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 1)
    assert latch.cancelled == 0


async def test_stop_interrupts_a_long_poll(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker waiting in a 20 s long poll returns promptly when stop is set."""
    service = await make_service(wait_time_seconds=20)
    polling = asyncio.Event()
    receive = service.queue.receive

    async def watched_receive(
        types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        polling.set()
        return await receive(types, max_messages, wait_seconds, visibility_seconds)

    monkeypatch.setattr(service.queue, "receive", watched_receive)
    stop = asyncio.Event()
    run = asyncio.create_task(Worker(service).run(stop))
    await polling.wait()
    stop.set()
    async with asyncio.timeout(5):
        await run
    # A job sent afterwards is still there for the next worker.
    job = await submit(service, "noop", {})
    await drain(service)
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_receive_errors_do_not_stop_the_worker(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue that fails to answer is retried after a short pause, and the job still runs."""
    service = await make_service()
    failures = 0
    receive = service.queue.receive

    async def flaky_receive(
        types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise BackendUnavailableError("queue down")
        return await receive(types, max_messages, wait_seconds, visibility_seconds)

    monkeypatch.setattr(service.queue, "receive", flaky_receive)
    job = await submit(service, "noop", {})
    await drain(service)
    assert failures == 2
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_store_error_while_finishing_does_not_stop_the_worker(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store failure writing one job's outcome is logged, and the worker goes on with the next job."""
    service = await make_service()
    first = await submit(service, "noop", {"note": "unlucky"}, priority=1)
    second = await submit(service, "noop", {"note": "fine"})
    complete = service.complete
    failed_once = False

    async def failing_complete(*args: object, **kwargs: object) -> object:
        nonlocal failed_once
        if not failed_once:
            failed_once = True
            raise BackendUnavailableError("store down")
        return await complete(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "complete", failing_complete)
    second_done = on_event(service, second.id, JobEventKind.COMPLETED)
    await drain(service, concurrency=1)
    await second_done.wait()
    unlucky = await reload(service, first)
    # The unlucky job stays claimed; its message reappears after the visibility timeout.
    assert (unlucky.status, unlucky.attempts) == (JobStatus.PROCESSING, 1)


async def test_messages_received_as_the_worker_stops_are_given_back(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages a receive returns after stop was set are made visible again at once, not run."""
    service = await make_service()
    job = await submit(service, "noop", {})
    stop = asyncio.Event()
    receive = service.queue.receive

    async def receive_then_stop(
        types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        deliveries = await receive(types, max_messages, 0, visibility_seconds)
        stop.set()
        return deliveries

    monkeypatch.setattr(service.queue, "receive", receive_then_stop)
    await Worker(service).run(stop)
    untouched = await reload(service, job)
    assert (untouched.status, untouched.attempts) == (JobStatus.PENDING, 0)
    assert (await service.queue.depths(["noop"]))["noop"].ready == 1
