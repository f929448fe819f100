"""A claimed job counts as sent: once PENDING again, the sweeper leaves it to its message (DESIGN.md §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.models import ClaimDecision, JobId, JobStatus, Principal, utcnow
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES

ALICE = Principal("alice")


@pytest.fixture
async def service(distributed_settings: Callable[..., Settings]) -> AsyncIterator[JobService]:
    """A service on MongoDB and SQS: there, sending a job and marking it sent are two steps."""
    settings = distributed_settings(redis_url=None)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues(["flaky"])
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            transaction=backends.transaction,
        )


async def test_job_claimed_before_it_was_marked_sent_is_not_swept_after_a_retry(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that read the job before its sender marked it sent still records it as sent."""
    mark_enqueued = service.store.mark_enqueued
    marks: list[JobId] = []

    async def late_mark(job_id: JobId, at: object) -> None:
        marks.append(job_id)  # the worker's claim reads the job before this lands

    monkeypatch.setattr(service.store, "mark_enqueued", late_mark)
    job = await service.submit(ALICE, SubmitRequest("flaky", {"fail_times": 1}))
    claimed = await service.claim(job.id, "worker", 30)
    assert claimed.decision is ClaimDecision.RUN and claimed.claim is not None
    await mark_enqueued(job.id, utcnow())  # too late: the job is PROCESSING
    assert marks == [job.id]
    # When the attempt fails and the job waits for its retry, its message (released) holds it:
    retrying = await service.fail_attempt(claimed.claim, "boom", retry_delay=60)
    assert retrying.status is JobStatus.PENDING
    # the sweeper does not send it again.
    later = utcnow() + timedelta(hours=1)
    assert await service.store.find_unenqueued(updated_before=later, run_before=later, limit=10) == []
