"""Stats history, attempt history, estimated completion and retention, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.attempts import AttemptOutcome, attempt_history, estimated_completion
from core.errors import ValidationError
from core.models import Principal
from core.service import JobService, SubmitRequest
from core.stats_history import StatsRecorder, flush, median_run_seconds, stats_history
from tests.support.services import BACKENDS, service_on
from workers.retention import delete_expired
from workers.runtime import Worker

ADMIN = Principal("root", "admin")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with service_on(request, tmp_path, backoff_base_seconds=0, wait_time_seconds=0.2) as service:
        yield service


async def _run_all(service: JobService, *types: str) -> None:
    async with asyncio.timeout(30):
        await Worker(service, types=list(types), burst=True).run()


async def _recorded(service: JobService, *requests: SubmitRequest) -> None:
    """Submit ``requests``, run them all, and flush what a stats recorder counted."""
    recorder = StatsRecorder()
    service.listeners.append(recorder.on_event)
    for request in requests:
        await service.submit(ADMIN, request)
    await _run_all(service, *{r.type for r in requests})
    service.listeners.remove(recorder.on_event)
    await flush(service, recorder)


async def test_stats_history_counts_what_ran(service: JobService) -> None:
    """Submitted, started, completed and failed jobs are counted in the current bucket."""
    await _recorded(
        service,
        SubmitRequest("noop", {}),
        SubmitRequest("noop", {}),
        SubmitRequest("fail", {}, max_attempts=1),
    )
    buckets = await stats_history(service, None, 3600, None)
    totals = [
        sum(getattr(b, name) for b in buckets) for name in ("submitted", "started", "completed", "failed")
    ]
    assert totals == [3, 3, 2, 1]
    assert buckets[-1].run_seconds_p50 is not None and buckets[-1].wait_seconds_p95 is not None


async def test_stats_history_filters_by_type(service: JobService) -> None:
    """With ``type``, only that type's counts are in the buckets."""
    await _recorded(service, SubmitRequest("noop", {}), SubmitRequest("fail", {}, max_attempts=1))
    buckets = await stats_history(service, None, 60, "fail")
    assert sum(b.submitted for b in buckets) == 1
    assert sum(b.completed for b in buckets) == 0


async def test_stats_history_buckets_start_at_multiples_of_the_size(service: JobService) -> None:
    """An hour of five-minute buckets: each starts at a multiple of 300 s since the epoch, none missing."""
    buckets = await stats_history(service, service.clock() - timedelta(hours=1), 300, None)
    assert all(int(b.at.timestamp()) % 300 == 0 for b in buckets)
    assert len(buckets) in (12, 13)


async def test_stats_history_refuses_sub_minute_buckets(service: JobService) -> None:
    """Buckets are made of stored minutes: ``bucketSeconds`` must be a multiple of 60."""
    with pytest.raises(ValidationError):
        await stats_history(service, None, 30, None)


async def test_attempt_history_of_a_job_that_failed_twice_then_passed(service: JobService) -> None:
    """Two FAILED attempts then a COMPLETED one, each with its worker, times and error."""
    job = await service.submit(ADMIN, SubmitRequest("flaky", {"fail_times": 2}))
    await _run_all(service, "flaky")
    events = await service.store.list_events(after=None, limit=1000, job_id=job.id)
    history = attempt_history(events)
    assert [(a.number, a.outcome) for a in history] == [
        (1, AttemptOutcome.FAILED),
        (2, AttemptOutcome.FAILED),
        (3, AttemptOutcome.COMPLETED),
    ]
    assert all(a.worker and a.ended_at and a.ended_at >= a.started_at for a in history)
    assert history[0].error is not None and history[2].error is None


async def test_attempt_history_shows_a_lost_worker(service: JobService) -> None:
    """A job claimed again after its first worker's lease ran out shows that attempt LOST."""
    job = await service.submit(ADMIN, SubmitRequest("noop", {}))
    first = await service.claim(job.id, "dead-worker", 0.0)
    assert first.claim is not None
    second = await service.claim(job.id, "live-worker", 60)
    assert second.claim is not None
    await service.complete(second.claim, {"ok": True})
    events = await service.store.list_events(after=None, limit=1000, job_id=job.id)
    history = attempt_history(events)
    assert [(a.worker, a.outcome) for a in history] == [
        ("dead-worker", AttemptOutcome.LOST),
        ("live-worker", AttemptOutcome.COMPLETED),
    ]


async def test_estimated_completion_follows_progress(service: JobService) -> None:
    """A job half done after 10 s is estimated to finish 10 s from now."""
    job = await service.submit(ADMIN, SubmitRequest("noop", {}))
    claimed = await service.claim(job.id, "w", 60)
    assert claimed.claim is not None and claimed.job is not None
    running = await service.progress(claimed.claim, 50, None)
    now = running.started_at + timedelta(seconds=10) if running.started_at else service.clock()
    assert estimated_completion(running, now, None) == now + timedelta(seconds=10)
    assert estimated_completion(job, now, 5.0) is None  # not running


async def test_estimated_completion_before_progress_uses_the_median(service: JobService) -> None:
    """Before any progress, the estimate is the start plus the type's median run time."""
    await _recorded(service, SubmitRequest("noop", {}))
    median = await median_run_seconds(service, "noop")
    assert median is not None
    job = await service.submit(ADMIN, SubmitRequest("noop", {}))
    claimed = await service.claim(job.id, "w", 60)
    assert claimed.job is not None and claimed.job.started_at is not None
    eta = estimated_completion(claimed.job, claimed.job.started_at, median)
    assert eta == claimed.job.started_at + timedelta(seconds=median)


async def test_retention_deletes_expired_jobs_in_batches(service: JobService) -> None:
    """Jobs finished longer ago than the retention are deleted, batch by batch; newer ones stay."""
    for _ in range(5):
        await service.submit(ADMIN, SubmitRequest("noop", {}))
    await _run_all(service, "noop")
    later = service.clock() + timedelta(days=31)
    aged = replace_clock(service, later, retention_batch=2)
    assert await delete_expired(aged) == 5
    fresh = await service.submit(ADMIN, SubmitRequest("noop", {}))
    assert await delete_expired(aged) == 0
    assert await service.store.get(fresh.id) is not None


def replace_clock(service: JobService, now: datetime, **settings: object) -> JobService:
    """The same backends under a clock stopped at ``now`` and changed settings."""
    return JobService(
        service.store,
        service.queue,
        service.bus,
        service.registry,
        service.settings.model_copy(update=settings),
        clock=lambda: now,
    )
