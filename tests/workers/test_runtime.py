"""The worker's run of a job, from message to outcome, on the embedded backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from core.errors import UnknownJobTypeError
from core.models import Job, JobEvent, JobEventKind, JobStatus, new_job_id, utcnow
from core.service import JobService
from tests.workers.conftest import ADMIN, drain, events, kinds, reload, submit
from tests.workers.jobtypes import Latch
from workers.runtime import Worker


async def insert_unchecked(service: JobService, job: Job) -> Job:
    """Store (and enqueue) a job without the service's validation, as an older version might have."""
    stored, _ = await service.store.insert(job, JobEvent.of(job, JobEventKind.CREATED), utcnow())
    if stored.enqueued_at is None:  # the store did not enqueue it in its transaction (``JobStore.insert``)
        await service.queue.send(stored)
    return stored


async def test_noop_job_completes(service: JobService) -> None:
    """A noop job runs once and completes with its result, through STARTED then COMPLETED."""
    job = await submit(service, "noop", {"note": "hi"})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert done.result == {"ok": True, "note": "hi"}
    assert done.attempts == 1
    assert done.progress == 100.0
    assert await kinds(service, job) == [JobEventKind.CREATED, JobEventKind.STARTED, JobEventKind.COMPLETED]
    assert (await service.queue.depths(["noop"]))["noop"].waiting == 0


async def test_concurrency_limit_is_respected(service: JobService, latches: Callable[[str], Latch]) -> None:
    """No more than ``concurrency`` handlers run at once, and all jobs still finish."""
    latch = latches("limit")
    jobs = [await submit(service, "latch", {"latch": "limit"}) for _ in range(7)]
    worker = Worker(service, concurrency=3, burst=True)
    # Open the latch once three wait inside it together; later jobs then pass straight through.
    full = latch.entered_by(3)
    run = asyncio.create_task(worker.run())
    await full.wait()
    latch.opened.set()
    await run
    assert latch.most_inside == 3
    assert [(await reload(service, j)).status for j in jobs] == [JobStatus.COMPLETED] * 7


async def test_flaky_job_retries_until_it_succeeds(service: JobService) -> None:
    """A job failing twice is retried with RETRYING events and completes on its third attempt."""
    job = await submit(service, "flaky", {"fail_times": 2})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert done.attempts == 3
    assert done.result == {"attempt": 3}
    history = await kinds(service, job)
    assert history.count(JobEventKind.RETRYING) == 2
    assert history.count(JobEventKind.STARTED) == 3


async def test_exhausted_attempts_fail_and_dead_letter(service: JobService) -> None:
    """A job failing on every attempt ends FAILED and its message lands in the dead-letter queue."""
    job = await submit(service, "fail", {"message": "boom"})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 2
    assert done.error == "RuntimeError: boom"
    depth = (await service.queue.depths(["fail"]))["fail"]
    assert depth.dead == 1
    assert depth.waiting == 0


async def test_permanent_error_fails_after_one_attempt(service: JobService) -> None:
    """``PermanentError`` fails the job at once, without retrying."""
    job = await submit(service, "fail", {"permanent": True, "message": "cannot ever work"})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error == "cannot ever work"
    assert JobEventKind.RETRYING not in await kinds(service, job)
    assert (await service.queue.depths(["fail"]))["fail"].dead == 1


async def test_timeout_is_retried_then_fails(service: JobService) -> None:
    """A handler over its timeout is stopped, retried, and the job fails with "timed out" in the end."""
    job = await submit(service, "sleep", {"seconds": 30}, timeout_seconds=1, max_attempts=2)
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 2
    assert done.error == "timed out after 1s"
    assert (await kinds(service, job)).count(JobEventKind.RETRYING) == 1


async def test_retry_with_delay_sets_run_at(service: JobService) -> None:
    """``Retry(delay=…)`` puts the job back PENDING with ``run_at`` that far ahead and its message hidden."""
    job = await submit(service, "flaky", {"fail_times": 1, "retry_delay": 120})
    before = utcnow()
    await drain(service)
    waiting = await reload(service, job)
    assert waiting.status is JobStatus.PENDING
    assert waiting.attempts == 1
    assert waiting.run_at is not None
    assert before + timedelta(seconds=119) <= waiting.run_at <= utcnow() + timedelta(seconds=120)
    assert waiting.error == "failing on purpose (1)"
    depth = (await service.queue.depths(["flaky"]))["flaky"]
    assert (depth.ready, depth.delayed + depth.in_flight) == (0, 1)  # SQS counts it in flight


async def test_message_for_a_future_job_is_hidden_until_run_at(service: JobService) -> None:
    """A message delivered before the job's ``run_at`` is released until then, and the job is not claimed."""
    job = await submit(service, "noop", {}, delay_seconds=300)
    await service.queue.send(job, 0)  # an early duplicate, as a queue may deliver
    await drain(service)
    waiting = await reload(service, job)
    assert waiting.status is JobStatus.PENDING
    assert waiting.attempts == 0
    depth = (await service.queue.depths(["noop"]))["noop"]
    # Hidden, not dropped (SQS keeps the duplicate as a second message, SQLite one row per job).
    assert depth.ready == 0 and depth.delayed + depth.in_flight >= 1


async def test_cancelled_pending_job_never_runs(service: JobService) -> None:
    """A job cancelled while PENDING has its message acknowledged and its handler never called."""
    job = await submit(service, "noop", {})
    await service.cancel(ADMIN, job.id)
    await drain(service)
    assert (await reload(service, job)).status is JobStatus.CANCELLED
    assert JobEventKind.STARTED not in await kinds(service, job)
    assert (await service.queue.depths(["noop"]))["noop"].waiting == 0


async def test_malformed_payload_fails_permanently(service: JobService) -> None:
    """A stored payload the job type rejects fails the job after one attempt, naming the field."""
    job = await insert_unchecked(
        service, Job(id=new_job_id(), type="sleep", owner="tester", payload={"seconds": "x"})
    )
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None and done.error.startswith("payload.seconds:")
    assert (await service.queue.depths(["sleep"]))["sleep"].dead == 1


async def test_unknown_job_type_fails_permanently(service: JobService) -> None:
    """A job whose type this process does not know fails after one attempt instead of looping."""
    ghost = await insert_unchecked(service, Job(id=new_job_id(), type="ghost", owner="tester", payload={}))
    await service.queue.send(replace(ghost, type="noop"), 0)  # its message reaches a noop worker
    await drain(service, types=["noop"])
    done = await reload(service, ghost)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None and "unknown job type 'ghost'" in done.error


async def test_unserialisable_result_fails_permanently(service: JobService) -> None:
    """A handler result JSON cannot hold fails the job with a message saying so."""
    job = await submit(service, "unserialisable", {})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None and "not JSON-serialisable" in done.error


async def test_missing_job_message_is_dropped(service: JobService) -> None:
    """A message naming a job that does not exist is acknowledged and the worker carries on."""
    template = await submit(service, "noop", {})
    await service.queue.send(replace(template, id=new_job_id()), 0)
    await drain(service)
    assert (await reload(service, template)).status is JobStatus.COMPLETED
    assert (await service.queue.depths(["noop"]))["noop"].waiting == 0


async def test_every_event_is_written_in_version_order(service: JobService) -> None:
    """The events of a run have consecutive versions, from CREATED to the outcome."""
    job = await submit(service, "flaky", {"fail_times": 1})
    await drain(service)
    versions = [e.version for e in await events(service, job)]
    assert versions == list(range(1, len(versions) + 1))


async def test_default_types_leave_out_external_ones(service: JobService) -> None:
    """By default a worker takes every registered type except those run outside jobpulse."""
    external = replace(service.registry.get("noop"), name="elsewhere", external=True)
    service.registry.register(external)
    worker = Worker(service)
    assert "elsewhere" not in worker.types
    assert {"noop", "image_resize", "webhook"} <= set(worker.types)


async def test_unknown_type_in_worker_types_is_refused(service: JobService) -> None:
    """Naming a type the registry does not know is an error when the worker is made, not later."""
    with pytest.raises(UnknownJobTypeError, match="nope"):
        Worker(service, types=["noop", "nope"])
