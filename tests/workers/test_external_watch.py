"""The sweeper's watch over external job types' messages: expired claims, dead letters, acknowledgements."""

from __future__ import annotations

import pytest

from core.models import JobEventKind, JobStatus
from core.service import JobService
from tests.workers.conftest import ADMIN, FakeClock, MakeService, kinds, reload, submit
from workers.external import watch_external_jobs
from workers.registry import external_job_types

PROCESSOR = "external:gpu-box:1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(make_service: MakeService, clock: FakeClock) -> JobService:
    """An embedded service on a settable clock that knows the external type ``render``."""
    service = await make_service(clock=clock, visibility_timeout=60)
    for job_type in external_job_types("render"):
        service.registry.register(job_type)
    return service


async def test_expired_claim_makes_the_job_pending_again(service: JobService, clock: FakeClock) -> None:
    """A claim whose lease ran out is ended: PENDING again, the attempt counted, claimable at once."""
    job = await submit(service, "render", {})
    await service.claim(job.id, PROCESSOR, 30)
    clock.advance(31)

    await watch_external_jobs(service)

    expired = await reload(service, job)
    assert (expired.status, expired.attempts, expired.lease_owner) == (JobStatus.PENDING, 1, None)
    assert (await kinds(service, job))[-1] is JobEventKind.RETRYING
    assert (await service.claim(job.id, "external:other:2", 30)).claim is not None


async def test_live_claim_is_left_alone(service: JobService) -> None:
    """A claim within its lease is not touched, and the message is hidden, not dropped."""
    job = await submit(service, "render", {})
    claimed = (await service.claim(job.id, PROCESSOR, 30)).job

    await watch_external_jobs(service)

    assert await reload(service, job) == claimed
    depth = (await service.queue.depths(["render"]))["render"]
    assert (depth.ready, depth.dead) == (0, 0)
    assert depth.in_flight + depth.delayed == 1


async def test_expired_last_attempt_is_failed_and_dead_lettered(
    service: JobService, clock: FakeClock
) -> None:
    """On the last attempt an expired claim fails the job, and its message goes to the dead-letter queue."""
    job = await submit(service, "render", {}, max_attempts=1)
    await service.claim(job.id, PROCESSOR, 30)
    clock.advance(31)

    await watch_external_jobs(service)

    assert (await reload(service, job)).status is JobStatus.FAILED
    assert (await service.queue.depths(["render"]))["render"].dead == 1


async def test_expired_claim_with_a_cancel_request_is_cancelled(
    service: JobService, clock: FakeClock
) -> None:
    """A cancel requested of a processor that then vanished ends the job CANCELLED at its lease's end."""
    job = await submit(service, "render", {})
    await service.claim(job.id, PROCESSOR, 30)
    await service.cancel(ADMIN, job.id)
    clock.advance(31)

    await watch_external_jobs(service)

    assert (await reload(service, job)).status is JobStatus.CANCELLED
    assert (await service.queue.depths(["render"]))["render"].waiting == 0


async def test_finished_job_message_is_acknowledged(service: JobService) -> None:
    """Once an external job completed, its message is deleted: nothing is left in the queue."""
    job = await submit(service, "render", {})
    claim = (await service.claim(job.id, PROCESSOR, 30)).claim
    assert claim is not None
    await service.complete(claim, {"frames": 1})

    await watch_external_jobs(service)

    depth = (await service.queue.depths(["render"]))["render"]
    assert (depth.ready, depth.in_flight, depth.delayed, depth.dead) == (0, 0, 0, 0)
