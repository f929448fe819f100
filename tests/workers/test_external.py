"""External job types: declared without code, never run by workers, their messages settled by the sweeper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from core.backends import open_backends
from core.errors import ConfigurationError
from core.models import JobEventKind, JobStatus
from core.service import JobService
from core.settings import Settings
from tests.workers.conftest import ADMIN, TEST_MODULES, FakeClock, MakeService, kinds, reload, submit
from workers.external import watch_external_jobs
from workers.registry import external_job_types, load_registry

PROCESSOR = "external:gpu-box:1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["embedded", "distributed"])
async def service(
    request: pytest.FixtureRequest,
    make_service: MakeService,
    clock: FakeClock,
) -> AsyncIterator[JobService]:
    """A service on a settable clock that knows the external type ``render``: SQLite, or MongoDB + SQS."""
    if request.param == "embedded":
        yield await make_service(clock=clock, visibility_timeout=60, external_types="render")
        return
    distributed_settings: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
    settings = distributed_settings(job_modules=TEST_MODULES, visibility_timeout=60, external_types="render")
    async with open_backends(settings) as backends:
        registry = load_registry(settings)
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            registry,
            settings,
            clock=clock,
            transaction=backends.transaction,
        )


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


def test_declared_external_types_take_any_object() -> None:
    """JOBPULSE_EXTERNAL_TYPES declares external types, with a description, accepting any JSON object."""
    registry = load_registry(Settings(external_types="render:Renders a scene, ocr"))
    render, ocr = registry.get("render"), registry.get("ocr")

    assert (render.external, render.description) == (True, "Renders a scene")
    assert ocr.external and ocr.description
    assert render.parse({"scene": {"anything": [1, 2]}}).model_dump() == {"scene": {"anything": [1, 2]}}


def test_declared_external_type_with_a_bad_name_is_refused() -> None:
    """A declared name that cannot be a queue name is a configuration error, said at start-up."""
    with pytest.raises(ConfigurationError, match="not a job type name"):
        external_job_types("render scenes:Renders")
