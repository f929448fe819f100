"""A worker starting up gives back at once the jobs of workers whose processes are gone (embedded)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.models import JobStatus, Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.services import BACKENDS, service_on
from workers.owners import hold_owner_lock, release_dead_owners

ALICE = Principal("alice")
LONG_LEASE = 300.0


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    where = {} if request.param == "embedded" else {"data_dir": tmp_path}  # embedded: tmp_path already
    async with service_on(request, tmp_path, **where) as service:
        yield service


def leave_dead_owner_file(service: JobService, owner: str) -> None:
    """What a ``kill -9``'d worker leaves: its owner file, locked by nobody."""
    directory = service.settings.data_dir / "owners"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / owner).touch()


async def claimed_by(service: JobService, owner: str) -> str:
    """A job submitted and claimed by ``owner`` under a long lease; its id."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    [(delivery, _)] = [(d, None) for d in await service.queue.receive(["noop"], 1, 1, LONG_LEASE)]
    claimed = await service.claim(delivery.job_id, owner, LONG_LEASE)
    assert claimed.job is not None and claimed.job.status is JobStatus.PROCESSING
    return job.id


async def test_a_dead_owners_job_is_queued_again_at_once(service: JobService) -> None:
    """Embedded: a PROCESSING job whose owner's lock is free goes back PENDING and is receivable now;
    distributed: nothing is local to look at, and the lease stands."""
    job_id = await claimed_by(service, "dead-worker")
    leave_dead_owner_file(service, "dead-worker")

    released = await release_dead_owners(service)

    job = await service.store.get(job_id)
    assert job is not None
    if service.settings.mongodb_url is None:
        received = await service.queue.receive(["noop"], 1, 1, LONG_LEASE)
        assert (released, job.status, job.attempts, [d.job_id for d in received]) == (
            1,
            JobStatus.PENDING,
            1,
            [job_id],
        )
    else:
        assert (released, job.status) == (0, JobStatus.PROCESSING)


async def test_a_live_owners_job_keeps_its_lease(service: JobService) -> None:
    """A PROCESSING job whose owner holds its lock stays PROCESSING under that owner."""
    job_id = await claimed_by(service, "live-worker")
    with hold_owner_lock(service, "live-worker"):
        assert await release_dead_owners(service) == 0
    job = await service.store.get(job_id)
    assert job is not None and (job.status, job.lease_owner) == (JobStatus.PROCESSING, "live-worker")


def test_the_owner_lock_is_held_while_the_block_runs_and_gone_after(tmp_path: Path) -> None:
    """``hold_owner_lock`` keeps the owner's file locked for the block, then removes it."""

    class _Service:
        settings = Settings(data_dir=tmp_path)

    path = tmp_path / "owners" / "w1"
    with hold_owner_lock(_Service(), "w1"):  # type: ignore[arg-type]
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert not path.exists()
