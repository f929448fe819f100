"""A job's message and its lease: whatever the queue does, a job under a lease is never left without
a message to run it again should its worker die (DESIGN.md §3).

A claim's lease never outlasts its message's invisibility; heartbeats keep the lease whatever the
queue answers; and a message that comes back while the lease holds is kept, hidden until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.models import ClaimDecision, Job, JobStatus
from core.ports import Delivery
from core.service import JobService
from tests.workers.conftest import FakeClock, MakeService, drain, reload, submit
from tests.workers.jobtypes import Latch
from workers.runtime import Worker


async def test_lease_runs_from_the_receive_not_from_the_claim(
    make_service: MakeService, latches: Callable[[str], Latch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim made seconds after the receive holds the job only until the message reappears."""
    clock = FakeClock()
    # receive, then claim: the ports' path (SQS)
    service = await make_service(clock=clock, one_transaction=False, visibility_timeout=30)
    latch = latches("slow-claim")
    job = await submit(service, "latch", {"latch": "slow-claim"})
    receive = service.queue.receive
    asked_at: list[datetime] = []

    async def slow_receive(
        types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        # The message is hidden from the moment the queue is asked for it ...
        before = clock()
        deliveries = await receive(types, max_messages, wait_seconds, visibility_seconds)
        if deliveries:
            asked_at.append(before)
            clock.advance(5)  # ... but its claim comes 5 s later (a slow answer, a slow store).
        return deliveries

    monkeypatch.setattr(service.queue, "receive", slow_receive)
    await _run_until_started(service, job, latch, asked_at)


async def test_lease_of_a_claim_made_with_the_receive_runs_from_the_ask(
    make_service: MakeService, latches: Callable[[str], Latch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receive and claim in one transaction (embedded): the lease still starts when the queue was asked,
    however long the receive then took, so it cannot outlast the message's invisibility."""
    clock = FakeClock()
    service = await make_service(clock=clock, visibility_timeout=30)
    assert service.transaction is not None
    latch = latches("slow-take")
    job = await submit(service, "latch", {"latch": "slow-take"})
    store = service.transaction
    receive_and_decide = store.receive_and_decide
    asked_at: list[datetime] = []

    async def slow_receive(*args: Any) -> Any:
        before = clock()
        clock.advance(5)  # the take comes 5 s after the ask (a long poll, a slow store)
        taken = await receive_and_decide(*args)
        if taken:
            asked_at.append(before)
        return taken

    monkeypatch.setattr(store, "receive_and_decide", slow_receive)
    await _run_until_started(service, job, latch, asked_at)


async def _run_until_started(service: JobService, job: Job, latch: Latch, asked_at: list[datetime]) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(service).run(stop))
    await latch.entered.wait()
    running = await reload(service, job)
    assert running.status is JobStatus.PROCESSING
    assert running.lease_until == asked_at[0] + timedelta(seconds=30)
    latch.opened.set()
    stop.set()
    await worker
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_a_queue_that_does_not_answer_does_not_hold_up_the_lease(
    make_service: MakeService, latches: Callable[[str], Latch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats keep extending the lease while extending the message's visibility hangs."""
    # A lease long enough that a loaded machine's slow write does not lapse it; heartbeats every 0.5 s.
    service = await make_service(visibility_timeout=1.5)
    extending = asyncio.Event()

    async def hanging_extend(delivery: Delivery, visibility_seconds: float) -> None:
        extending.set()
        await asyncio.Event().wait()  # an SQS call that never returns

    monkeypatch.setattr(service.queue, "extend", hanging_extend)
    heartbeat = service.heartbeat
    beats = 0
    third = asyncio.Event()

    async def counting_heartbeat(*args: Any, **kwargs: Any) -> Job:
        nonlocal beats
        job = await heartbeat(*args, **kwargs)
        beats += 1
        if beats == 3:
            third.set()
        return job

    monkeypatch.setattr(service, "heartbeat", counting_heartbeat)
    latch = latches("hanging-queue")
    job = await submit(service, "latch", {"latch": "hanging-queue"})
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(service).run(stop))
    await latch.entered.wait()
    first = await reload(service, job)
    async with asyncio.timeout(10):
        await third.wait()
    current = await reload(service, job)
    assert extending.is_set()
    assert current.lease_owner == first.lease_owner and current.attempts == 1
    assert first.lease_until is not None and current.lease_until is not None
    assert current.lease_until > first.lease_until
    latch.opened.set()
    stop.set()
    await worker
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_message_of_a_job_under_a_live_lease_is_kept_until_the_lease_ends(
    make_service: MakeService,
) -> None:
    """A message for a job running under another worker's lease is hidden until the lease ends, not deleted."""
    clock = FakeClock()
    service = await make_service(clock=clock)
    job = await submit(service, "noop", {})
    [delivery] = await service.queue.receive(["noop"], 1, 0, 300)
    holder = await service.claim(job.id, "holder", 300)
    assert holder.decision is ClaimDecision.RUN
    # Given the holder's message is back in the queue (its visibility could not be extended),
    await service.queue.release(delivery, 0)
    # when another worker receives it while the lease holds,
    await drain(service, worker_id="other")
    # then the job is left to its holder, and the message kept for when the lease ends.
    running = await reload(service, job)
    assert (running.status, running.lease_owner, running.attempts) == (JobStatus.PROCESSING, "holder", 1)
    depth = (await service.queue.depths(["noop"]))["noop"]
    assert (depth.ready, depth.delayed) == (0, 1)
