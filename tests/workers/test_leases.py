"""Leases: at most one run at a time, and a lost lease writes nothing (DESIGN.md §3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from core.models import ClaimDecision, JobEventKind, JobStatus
from core.ports import Delivery
from tests.workers.conftest import FakeClock, MakeService, drain, kinds, on_event, reload, submit
from tests.workers.jobtypes import Latch
from workers.runtime import Worker


async def test_redelivered_message_of_a_running_job_is_dropped(
    make_service: MakeService, latches: Callable[[str], Latch]
) -> None:
    """A second message for a job running under a live lease does not start it again: it runs once."""
    service = await make_service()
    latch = latches("once")
    job = await submit(service, "latch", {"latch": "once"})
    stop = asyncio.Event()
    first = asyncio.create_task(Worker(service, worker_id="first").run(stop))
    await latch.entered.wait()
    # Given a duplicate message while the job runs,
    await service.queue.send(job, 0)
    # when another worker receives it, it leaves the job alone (as would any other claim).
    await drain(service, worker_id="second")
    assert (await service.claim(job.id, "third", 300)).decision is ClaimDecision.DROP
    running = await reload(service, job)
    assert (running.status, running.lease_owner, running.attempts) == (JobStatus.PROCESSING, "first", 1)
    completed = on_event(service, job.id, JobEventKind.COMPLETED)
    latch.opened.set()
    await completed.wait()
    stop.set()
    await first
    assert latch.runs == 1
    assert (await kinds(service, job)).count(JobEventKind.STARTED) == 1


async def test_worker_whose_lease_expired_cannot_complete(
    make_service: MakeService, latches: Callable[[str], Latch]
) -> None:
    """A worker finishing after its lease expired and the job was reclaimed writes nothing."""
    clock = FakeClock()
    service = await make_service(clock=clock)
    latch = latches("late")
    job = await submit(service, "latch", {"latch": "late", "result": "from the late worker"})
    stop = asyncio.Event()
    late = asyncio.create_task(Worker(service, worker_id="late").run(stop))
    await latch.entered.wait()
    # Given the lease ran out and another worker claimed the job,
    clock.advance(service.settings.visibility_timeout + 1)
    reclaimed = await service.claim(job.id, "new", service.settings.visibility_timeout)
    assert reclaimed.decision is ClaimDecision.RUN and reclaimed.claim is not None
    # when the late handler finishes, its outcome is not written.
    latch.opened.set()
    stop.set()
    await late
    current = await reload(service, job)
    assert (current.status, current.lease_owner, current.attempts) == (JobStatus.PROCESSING, "new", 2)
    assert JobEventKind.COMPLETED not in await kinds(service, job)
    done = await service.complete(reclaimed.claim, "from the new worker")
    assert done.result == "from the new worker"


async def test_expired_lease_is_reclaimed_by_another_worker(make_service: MakeService) -> None:
    """A job whose worker died is claimed again once lease and visibility expire, counting a new attempt."""
    clock = FakeClock()
    service = await make_service(clock=clock)
    job = await submit(service, "noop", {})
    [delivery] = await service.queue.receive(["noop"], 1, 0, 300)
    dead = await service.claim(job.id, "dead", 300)
    assert dead.decision is ClaimDecision.RUN
    # The worker dies: its lease runs out, and so does its message's visibility.
    clock.advance(301)
    await service.queue.release(delivery, 0)
    await drain(service, worker_id="survivor")
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert done.attempts == 2
    assert (await kinds(service, job)).count(JobEventKind.STARTED) == 2


async def test_worker_lost_on_last_attempt_fails_the_job(make_service: MakeService) -> None:
    """A job whose worker died on its last attempt is FAILED by the next claim and dead-lettered."""
    clock = FakeClock()
    service = await make_service(clock=clock)
    job = await submit(service, "noop", {}, max_attempts=1)
    [delivery] = await service.queue.receive(["noop"], 1, 0, 300)
    await service.claim(job.id, "dead", 300)
    clock.advance(301)
    await service.queue.release(delivery, 0)
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.error is not None and "worker lost" in done.error
    assert (await service.queue.depths(["noop"]))["noop"].dead == 1


async def test_heartbeat_extends_the_lease(
    make_service: MakeService, latches: Callable[[str], Latch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a handler runs longer than the lease, heartbeats push ``lease_until`` and the message forward."""
    service = await make_service(visibility_timeout=0.3)
    extended: list[Delivery] = []
    twice = asyncio.Event()
    extend = service.queue.extend

    async def counting_extend(delivery: Delivery, visibility_seconds: float) -> None:
        await extend(delivery, visibility_seconds)
        extended.append(delivery)
        if len(extended) == 2:
            twice.set()

    monkeypatch.setattr(service.queue, "extend", counting_extend)
    latch = latches("long")
    job = await submit(service, "latch", {"latch": "long"})
    run = asyncio.create_task(drain(service))
    await latch.entered.wait()
    first = await reload(service, job)
    await twice.wait()
    current = await reload(service, job)
    assert first.lease_until is not None and current.lease_until is not None
    assert current.lease_until > first.lease_until
    assert current.status is JobStatus.PROCESSING and current.attempts == 1
    assert {d.job_id for d in extended} == {job.id}
    latch.opened.set()
    await run
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_heartbeat_that_finds_the_lease_lost_stops_the_handler(
    make_service: MakeService, latches: Callable[[str], Latch]
) -> None:
    """A heartbeat refused because another worker holds the job cancels the handler and writes nothing."""
    clock = FakeClock()
    service = await make_service(clock=clock, visibility_timeout=0.3)
    latch = latches("stolen")
    job = await submit(service, "latch", {"latch": "stolen"})
    run = asyncio.create_task(drain(service, worker_id="old"))
    await latch.entered.wait()
    clock.advance(1)
    assert (await service.claim(job.id, "thief", 300)).decision is ClaimDecision.RUN
    await latch.left.wait()
    await run
    assert latch.cancelled == 1
    current = await reload(service, job)
    assert (current.status, current.lease_owner, current.attempts) == (JobStatus.PROCESSING, "thief", 2)
