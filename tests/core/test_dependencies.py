"""Jobs that wait for other jobs (DESIGN.md §6), on the embedded and the distributed backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import JobNotFoundError
from core.flows import Flows
from core.models import DependencyFailure, Job, JobStatus, Principal
from core.service import JobService
from core.submission import SubmitRequest
from tests.support.services import BACKENDS, clocked_service_on

ALICE = Principal("alice")
BOB = Principal("bob")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with clocked_service_on(request, tmp_path) as service:
        yield service


def flows(service: JobService) -> Flows:
    assert service.flows is not None
    return service.flows


async def submit(service: JobService, *depends_on: str, **options: Any) -> Job:
    request = SubmitRequest("noop", {}, depends_on=tuple(depends_on), **options)
    return await service.submit(ALICE, request)


async def status(service: JobService, job: Job) -> JobStatus:
    current = await service.store.get(job.id)
    assert current is not None
    return current.status


async def finish(service: JobService, job: Job, *, ok: bool = True) -> Job:
    """Claim ``job`` as a worker would and complete it (or fail it for good)."""
    claimed = await service.claim(job.id, "w1", 30)
    assert claimed.claim is not None, claimed
    if ok:
        return await service.complete(claimed.claim, {"from": job.id})
    return await service.fail_attempt(claimed.claim, "boom", retryable=False)


async def test_a_job_with_dependencies_waits_until_they_complete(service: JobService) -> None:
    """A dependent is WAITING until its last dependency completes, then PENDING."""
    a, b = await submit(service), await submit(service)
    c = await submit(service, a.id, b.id)
    assert c.status is JobStatus.WAITING
    await finish(service, a)
    assert await status(service, c) is JobStatus.WAITING
    await finish(service, b)
    assert await status(service, c) is JobStatus.PENDING


async def test_a_released_dependent_can_be_claimed(service: JobService) -> None:
    """A released dependent is on its queue: a worker can claim and run it."""
    a = await submit(service)
    c = await submit(service, a.id)
    await finish(service, a)
    done = await finish(service, c)
    assert done.status is JobStatus.COMPLETED


async def test_a_failed_dependency_fails_its_dependents_down_the_graph(service: JobService) -> None:
    """Under FAIL, a dependency's failure fails its dependent, and theirs in turn."""
    a = await submit(service)
    b = await submit(service, a.id)
    c = await submit(service, b.id)
    await finish(service, a, ok=False)
    failed_b = await service.store.get(b.id)
    assert failed_b is not None and failed_b.status is JobStatus.FAILED
    assert failed_b.error == f"dependency {a.id} FAILED"
    assert await status(service, c) is JobStatus.FAILED


async def test_a_run_policy_dependent_runs_after_a_failed_dependency(service: JobService) -> None:
    """Under RUN, a dependent becomes PENDING whatever its dependency's end."""
    a = await submit(service)
    b = await submit(service, a.id, on_dependency_failure=DependencyFailure.RUN)
    await finish(service, a, ok=False)
    assert await status(service, b) is JobStatus.PENDING


async def test_cancelling_a_waiting_job_fails_its_dependents(service: JobService) -> None:
    """A cancelled WAITING job cancels nothing else; its dependents follow their policy."""
    a = await submit(service)
    b = await submit(service, a.id)
    c = await submit(service, b.id)
    cancelled = await service.cancel(ALICE, b.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert await status(service, a) is JobStatus.PENDING
    assert await status(service, c) is JobStatus.FAILED


async def test_a_dependency_already_completed_counts_as_done(service: JobService) -> None:
    """A dependency that completed before the submit leaves nothing to wait for."""
    a = await submit(service)
    await finish(service, a)
    b = await submit(service, a.id)
    assert await status(service, b) is JobStatus.PENDING


async def test_a_dependency_already_failed_fails_the_new_job(service: JobService) -> None:
    """A dependency that failed before the submit fails the new job at once under FAIL."""
    a = await submit(service)
    await finish(service, a, ok=False)
    b = await submit(service, a.id)
    assert await status(service, b) is JobStatus.FAILED


async def test_an_unknown_dependency_is_not_found_on_depends_on(service: JobService) -> None:
    """A dependency that does not exist is NOT_FOUND on ``dependsOn``, and nothing is created."""
    with pytest.raises(JobNotFoundError) as raised:
        await submit(service, "00000000-0000-7000-8000-000000000000")
    assert raised.value.field == "dependsOn"
    assert await service.store.count_jobs(_all()) == 0


async def test_another_owners_job_is_not_a_dependency(service: JobService) -> None:
    """Another owner's job is reported as missing."""
    theirs = await service.submit(BOB, SubmitRequest("noop", {}))
    with pytest.raises(JobNotFoundError):
        await submit(service, theirs.id)


async def test_handlers_see_their_dependencies_results(service: JobService) -> None:
    """``dependency_results`` maps each COMPLETED direct dependency to its result."""
    a = await submit(service)
    b = await submit(service, a.id)
    await finish(service, a)
    current = await service.store.get(b.id)
    assert current is not None
    assert await flows(service).dependency_results(current) == {a.id: {"from": a.id}}


async def test_the_sweeper_releases_what_a_crash_left_waiting(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dependent left WAITING by a crash after its dependency's finish is released by one sweep."""
    a = await submit(service)
    b = await submit(service, a.id)
    store = flows(service).store
    if store.releases_in_transaction:
        monkeypatch.setattr(service.store, "on_finished", None)  # the crash: no release
    else:

        async def crash(job: Job) -> None:
            return None

        monkeypatch.setattr(flows(service), "finished", crash)
    await finish(service, a)
    monkeypatch.undo()
    assert await status(service, b) is JobStatus.WAITING
    service.clock.offset = timedelta(seconds=service.settings.sweep_grace_seconds + 1)  # type: ignore[attr-defined]
    assert await flows(service).sweep() >= 1
    assert await status(service, b) is JobStatus.PENDING


async def test_an_expired_job_ends_cancelled(service: JobService) -> None:
    """A job not started within ``expiresInSeconds`` of being due ends CANCELLED, "expired"."""
    job = await submit(service, expires_in_seconds=5)
    service.clock.offset = timedelta(seconds=6)  # type: ignore[attr-defined]
    await service.claim(job.id, "w1", 30)
    ended = await service.store.get(job.id)
    assert ended is not None and ended.status is JobStatus.CANCELLED
    assert ended.error == "expired"


def _all() -> Any:
    from core.ports import JobFilter

    return JobFilter()
