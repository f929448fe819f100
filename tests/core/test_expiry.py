"""``expiresInSeconds`` ended by the sweeper, with no worker of the type running, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.flows import Flows
from core.models import DependencyFailure, Job, JobEventKind, JobStatus, Principal
from core.service import JobService
from core.submission import SubmitRequest
from tests.support.services import BACKENDS, clocked_service_on

ALICE = Principal("alice")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with clocked_service_on(request, tmp_path) as service:
        yield service


def later(service: JobService, seconds: float) -> None:
    service.clock.offset += timedelta(seconds=seconds)  # type: ignore[attr-defined]


def flows(service: JobService) -> Flows:
    assert service.flows is not None
    return service.flows


async def submit(service: JobService, *depends_on: str, **options: Any) -> Job:
    return await service.submit(ALICE, SubmitRequest("noop", {}, depends_on=tuple(depends_on), **options))


async def stored(service: JobService, job: Job) -> Job:
    current = await service.store.get(job.id)
    assert current is not None
    return current


async def test_the_sweeper_cancels_an_overdue_job_and_its_dependents_follow_their_policy(
    service: JobService,
) -> None:
    """An unclaimed job past ``expiresInSeconds`` ends CANCELLED "expired"; FAIL dependents fail, RUN ones run."""
    late = await submit(service, expires_in_seconds=5)
    failing = await submit(service, late.id)
    running = await submit(service, late.id, on_dependency_failure=DependencyFailure.RUN)
    assert await flows(service).expire() == 0
    later(service, 6)
    assert await flows(service).expire() == 1
    ended = await stored(service, late)
    assert (ended.status, ended.error) == (JobStatus.CANCELLED, "expired")
    failed = await stored(service, failing)
    assert (failed.status, failed.error) == (JobStatus.FAILED, f"dependency {late.id} CANCELLED")
    assert (await stored(service, running)).status is JobStatus.PENDING
    assert await flows(service).expire() == 0


async def test_a_waiting_job_expires_only_after_it_became_due(service: JobService) -> None:
    """A WAITING job is not due: its window starts when its dependencies release it."""
    first = await submit(service)
    waiting = await submit(service, first.id, expires_in_seconds=5)
    later(service, 60)
    assert await flows(service).expire() == 0
    assert (await stored(service, waiting)).status is JobStatus.WAITING
    claimed = await service.claim(first.id, "w1", 30)
    assert claimed.claim is not None
    await service.complete(claimed.claim, {})
    assert (await stored(service, waiting)).status is JobStatus.PENDING
    later(service, 4)
    assert await flows(service).expire() == 0
    later(service, 2)
    assert await flows(service).expire() == 1
    assert (await stored(service, waiting)).error == "expired"


async def test_a_job_claimed_in_time_never_expires(service: JobService) -> None:
    """A job a worker started before its expiry is left alone by the sweeper."""
    job = await submit(service, expires_in_seconds=5)
    claimed = await service.claim(job.id, "w1", 600)
    assert claimed.claim is not None
    later(service, 60)
    assert await flows(service).expire() == 0
    assert (await stored(service, job)).status is JobStatus.PROCESSING


async def test_a_claim_racing_the_sweep_ends_the_job_once(service: JobService) -> None:
    """An overdue job claimed while the sweeper ends it is CANCELLED once, and never runs."""
    job = await submit(service, expires_in_seconds=5)
    later(service, 6)
    claimed, ended = await asyncio.gather(service.claim(job.id, "w1", 30), flows(service).expire())
    assert claimed.claim is None
    assert ended in (0, 1)
    events = await service.store.list_events(after=None, limit=100, job_id=job.id)
    assert [e.kind for e in events].count(JobEventKind.CANCELLED) == 1
    assert JobEventKind.STARTED not in [e.kind for e in events]
    assert (await stored(service, job)).error == "expired"
