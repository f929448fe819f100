"""Submissions on MongoDB and SQS at once: events, sends and marks go out in batches (DESIGN.md §2
still holds: insert, send, mark; the sweeper sends what was never marked; a duplicate is harmless)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest

from core.backends import open_backends
from core.errors import BackendUnavailableError
from core.jobtypes import JobTypeRegistry
from core.models import ClaimDecision, JobEventKind, JobId, JobStatus, Principal, utcnow
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from tests.support.services import OffsetClock

ALICE = Principal("alice")
VISIBILITY = 30


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
async def service(
    distributed_settings: Callable[..., Settings], clock: OffsetClock
) -> AsyncIterator[JobService]:
    settings = distributed_settings(redis_url=None)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues(["noop"])
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            clock=clock,
            transaction=backends.transaction,
        )


async def messages(service: JobService, count: int) -> list[JobId]:
    """Job ids of up to ``count`` messages received now (hidden for the rest of the test)."""
    got: list[JobId] = []
    while len(got) < count:
        batch = await service.queue.receive(["noop"], 10, 1, VISIBILITY)
        if not batch:
            break
        got += [d.job_id for d in batch]
    return got


async def test_concurrent_submits_are_each_stored_sent_and_marked_once(service: JobService) -> None:
    """Many submissions at once: each job has its CREATED event, one message, and is marked sent."""
    jobs = await asyncio.gather(*(service.submit(ALICE, SubmitRequest("noop", {})) for _ in range(40)))
    ids = sorted(job.id for job in jobs)
    assert sorted(await messages(service, 41)) == ids
    stored = await service.store.get_many(ids)
    assert all(job.enqueued_at is not None and job.version == 1 for job in stored.values())
    for job_id in ids:
        [event] = await service.store.list_events(after=None, limit=5, job_id=job_id)
        assert event.kind is JobEventKind.CREATED
    later = utcnow() + timedelta(hours=1)
    assert await service.store.find_unenqueued(updated_before=later, run_before=later, limit=50) == []


async def test_a_lost_mark_is_swept_and_the_job_still_runs_once(
    service: JobService, clock: OffsetClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job sent but never marked (the mark failed) is sent again by the sweeper; of its two
    messages one runs it and the other is dropped."""
    mark_enqueued = service.store.mark_enqueued
    failed: list[JobId] = []

    async def first_mark_fails(job_id: JobId, at: datetime) -> None:
        if not failed:
            failed.append(job_id)
            raise BackendUnavailableError("MongoDB mark_enqueued failed: primary stepped down")
        await mark_enqueued(job_id, at)

    monkeypatch.setattr(service.store, "mark_enqueued", first_mark_fails)
    jobs = await asyncio.gather(*(service.submit(ALICE, SubmitRequest("noop", {})) for _ in range(8)))
    [lost_id] = failed
    assert lost_id in {job.id for job in jobs}
    assert (await service.store.get(lost_id)).enqueued_at is None  # type: ignore[union-attr]
    clock.offset = timedelta(seconds=service.settings.sweep_grace_seconds + 1)
    assert await service.sweep() == 1
    assert await service.sweep() == 0  # marked this time
    held = await messages(service, 11)
    assert held.count(lost_id) == 2 and len(held) == 9 and set(held) == {job.id for job in jobs}
    first = await service.claim(lost_id, "w1", VISIBILITY)
    second = await service.claim(lost_id, "w2", VISIBILITY)
    assert (first.decision, second.decision) == (ClaimDecision.RUN, ClaimDecision.DROP)
    assert first.claim is not None
    done = await service.complete(first.claim, {"ok": True})
    assert done.status is JobStatus.COMPLETED and done.attempts == 1
