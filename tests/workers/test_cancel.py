"""Cancellation reaches a running handler (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from core.models import JobEventKind, JobStatus
from core.ports import CancelRequested
from core.service import JobService
from tests.workers.conftest import (
    ADMIN,
    EMBEDDED_ONLY,
    MakeService,
    drain,
    events,
    kinds,
    on_event,
    reload,
    submit,
)
from tests.workers.jobtypes import Latch
from workers.runtime import Worker


@EMBEDDED_ONLY  # on SQS a burst drain may find the message not yet visible and return; then STARTED never comes
async def test_cancel_stops_a_handler_awaiting_io(service: JobService) -> None:
    """Cancelling a job whose handler sleeps stops the handler and leaves the job CANCELLED for good."""
    job = await submit(service, "sleep", {"seconds": 3600})
    started = on_event(service, job.id, JobEventKind.STARTED)
    run = asyncio.create_task(drain(service))
    await started.wait()
    await service.cancel(ADMIN, job.id)
    await run
    done = await reload(service, job)
    assert done.status is JobStatus.CANCELLED
    assert done.attempts == 1
    assert (await kinds(service, job))[-1] is JobEventKind.CANCELLED
    assert (await service.queue.depths(["sleep"]))["sleep"].waiting == 0
    # Nothing the worker (or another one) does afterwards changes it.
    await drain(service)
    assert await reload(service, job) == done
    assert (await events(service, job))[-1].version == done.version


async def test_cancel_reaches_the_handler_it_interrupts(
    service: JobService, latches: Callable[[str], Latch]
) -> None:
    """The handler's task itself is cancelled (it sees ``CancelledError``), not merely abandoned."""
    latch = latches("cancel")
    job = await submit(service, "latch", {"latch": "cancel"})
    run = asyncio.create_task(drain(service))
    await latch.entered.wait()
    await service.cancel(ADMIN, job.id)
    await run
    assert latch.cancelled == 1
    assert (await reload(service, job)).status is JobStatus.CANCELLED


async def test_heartbeat_finds_a_cancel_the_bus_lost(
    make_service: MakeService, latches: Callable[[str], Latch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the control message lost, the next heartbeat reads the request and stops the handler."""
    service = await make_service(visibility_timeout=0.3)
    lost: list[CancelRequested] = []

    async def drop(message: CancelRequested) -> None:
        lost.append(message)

    monkeypatch.setattr(service.bus, "publish_control", drop)
    latch = latches("missed")
    job = await submit(service, "latch", {"latch": "missed"})
    run = asyncio.create_task(drain(service))
    await latch.entered.wait()
    await service.cancel(ADMIN, job.id)
    await run
    assert lost == [CancelRequested(job.id)]
    assert latch.cancelled == 1
    assert (await reload(service, job)).status is JobStatus.CANCELLED


async def test_cancel_of_another_workers_job_is_ignored(
    service: JobService, latches: Callable[[str], Latch]
) -> None:
    """A worker does not stop its own handlers for a cancel request naming a job it does not run."""
    latch = latches("mine")
    job = await submit(service, "latch", {"latch": "mine"})
    stop = asyncio.Event()
    worker = Worker(service)
    run = asyncio.create_task(worker.run(stop))
    await latch.entered.wait()
    await service.bus.publish_control(CancelRequested("someone-elses-job"))
    completed = on_event(service, job.id, JobEventKind.COMPLETED)
    latch.opened.set()
    await completed.wait()
    stop.set()
    await run
    assert latch.cancelled == 0
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_cancel_left_over_from_an_earlier_attempt_is_honoured(
    service: JobService, latches: Callable[[str], Latch]
) -> None:
    """A job back in PENDING with a cancel request still pending is cancelled at its next claim, not run."""
    latch = latches("leftover")
    job = await submit(service, "latch", {"latch": "leftover"})
    # As if the cancel arrived just as an earlier attempt failed and went back to PENDING.
    flagged = replace(job, cancel_requested=True, version=job.version + 1)
    assert await service.store.update(flagged, job.version, None) is not None
    await drain(service)
    assert latch.runs == 0
    assert (await reload(service, job)).status is JobStatus.CANCELLED
