"""Stopping a worker: promptly, gracefully, and without losing or double-counting a job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from core.errors import BackendUnavailableError
from core.models import JobEventKind, JobStatus
from core.ports import Delivery
from core.service import JobService
from tests.workers.conftest import MakeService, drain, events, on_event, reload, submit
from tests.workers.jobtypes import Latch
from workers.runtime import Worker

ReceiveHook = Callable[[Callable[[float], Awaitable[Any]], float], Awaitable[Any]]


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


def patch_receive(
    service: JobService, monkeypatch: pytest.MonkeyPatch, one_transaction: bool, hook: ReceiveHook
) -> None:
    """Route the worker's receive through ``hook(receive, wait_seconds)``: the queue's ``receive`` on
    the ports' path, the store's ``receive_and_decide`` (receive and claim in one) on the embedded one."""
    if one_transaction:
        store = service.transaction
        assert store is not None
        original = store.receive_and_decide

        async def fused(types: Any, most: int, wait: float, visibility: float, decide: Any) -> Any:
            return await hook(lambda wait: original(types, most, wait, visibility, decide), wait)

        monkeypatch.setattr(store, "receive_and_decide", fused)
    else:
        assert service.transaction is None
        receive = service.queue.receive

        async def plain(types: Sequence[str], most: int, wait: float, visibility: float) -> list[Delivery]:
            return await hook(lambda wait: receive(types, most, wait, visibility), wait)  # type: ignore[no-any-return]

        monkeypatch.setattr(service.queue, "receive", plain)


BOTH_PATHS = pytest.mark.parametrize("one_transaction", [True, False], ids=["receive+claim", "ports"])


@BOTH_PATHS
async def test_stop_interrupts_a_long_poll(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch, one_transaction: bool
) -> None:
    """A worker waiting in a 20 s long poll returns promptly when stop is set."""
    service = await make_service(one_transaction=one_transaction, wait_time_seconds=20)
    polling = asyncio.Event()

    async def watched(receive: Callable[[float], Awaitable[Any]], wait: float) -> Any:
        polling.set()
        return await receive(wait)

    patch_receive(service, monkeypatch, one_transaction, watched)
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


@BOTH_PATHS
async def test_receive_errors_do_not_stop_the_worker(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch, one_transaction: bool
) -> None:
    """A queue that fails to answer is retried after a short pause, and the job still runs."""
    service = await make_service(one_transaction=one_transaction)
    failures = 0

    async def flaky(receive: Callable[[float], Awaitable[Any]], wait: float) -> Any:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise BackendUnavailableError("queue down")
        return await receive(wait)

    patch_receive(service, monkeypatch, one_transaction, flaky)
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


@BOTH_PATHS
async def test_messages_received_as_the_worker_stops_are_given_back(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch, one_transaction: bool
) -> None:
    """Messages a receive returns after stop was set are given back at once, not run: their jobs are
    PENDING again, the attempt not counted, and the messages visible."""
    service = await make_service(one_transaction=one_transaction)
    job = await submit(service, "noop", {})
    stop = asyncio.Event()

    async def then_stop(receive: Callable[[float], Awaitable[Any]], wait: float) -> Any:
        taken = await receive(0)
        stop.set()
        return taken

    patch_receive(service, monkeypatch, one_transaction, then_stop)
    await Worker(service).run(stop)
    untouched = await reload(service, job)
    assert (untouched.status, untouched.attempts) == (JobStatus.PENDING, 0)
    assert (await service.queue.depths(["noop"]))["noop"].ready == 1
    kinds = [e.kind for e in await events(service, job)]
    assert kinds == [JobEventKind.CREATED, JobEventKind.STARTED, JobEventKind.RETRYING]
    await drain(service)
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_a_worker_cancelled_while_its_take_commits_is_cancelled(make_service: MakeService) -> None:
    """A take answers with what it took even if cancelled meanwhile (its claims are committed), but the
    worker's own cancellation still ends the worker."""
    service = await make_service()
    await submit(service, "noop", {})
    db = service.store.db  # type: ignore[attr-defined]
    write, committed, proceed = db.write, asyncio.Event(), asyncio.Event()

    async def slow_write(op: Any) -> Any:
        value = await write(op)
        committed.set()
        await proceed.wait()
        return value

    db.write = slow_write
    run = asyncio.create_task(Worker(service, burst=True).run())
    await committed.wait()
    run.cancel()
    proceed.set()
    async with asyncio.timeout(10):
        with pytest.raises(asyncio.CancelledError):
            await run
