"""Leases: 30 s by default (a heartbeat every 10 s), and a job type may have its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.jobtypes import JobTypeRegistry
from core.models import JobStatus, Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.holdjob import JOB_TYPES as HOLD_TYPES
from tests.support.services import BACKENDS, service_on
from workers.runtime import Worker

ALICE = Principal("alice")
TYPE_LEASE = 600.0
WAIT = 30.0


@asynccontextmanager
async def hold_leasing(
    request: pytest.FixtureRequest, tmp_path: Path, lease: float
) -> AsyncIterator[JobService]:
    """A service whose ``hold`` type leases for ``lease`` seconds by ``JOBPULSE_TYPE_LEASE_SECONDS``."""
    async with service_on(request, tmp_path, type_lease_seconds=f"hold={lease:g}") as service:
        await service.queue.ensure_queues(["hold"])
        service.registry = JobTypeRegistry([*service.registry, *HOLD_TYPES])
        yield service


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    """``hold`` leases for 10 minutes."""
    async with hold_leasing(request, tmp_path, TYPE_LEASE) as service:
        yield service


def test_the_default_lease_is_30_seconds() -> None:
    """Unset, ``JOBPULSE_VISIBILITY_TIMEOUT`` (the lease) is 30 s, so a heartbeat comes every 10 s."""
    assert Settings().visibility_timeout == 30


def test_a_type_lease_comes_from_the_setting_then_the_type_then_the_default() -> None:
    """``lease_for``: the setting's entry for the type, else the type's ``lease_seconds``, else the default."""
    [hold] = HOLD_TYPES
    own = type(hold)(**{**hold.__dict__, "lease_seconds": 90.0})
    settings = Settings(visibility_timeout=20, type_lease_seconds="hold=45, other=5")
    assert (
        hold.lease_for(settings),
        own.lease_for(Settings(visibility_timeout=20)),
        hold.lease_for(Settings(visibility_timeout=20)),
    ) == (45, 90, 20)


def test_a_malformed_type_lease_is_refused_when_settings_load() -> None:
    """An entry that is not ``type=seconds`` (seconds > 0) is a configuration error naming it."""
    with pytest.raises(ValidationError, match="hold=soon"):
        Settings(type_lease_seconds="hold=soon")


async def test_a_running_job_holds_its_types_lease(service: JobService, tmp_path: Path) -> None:
    """A worker running a job of a type with its own lease extends the claim to that lease at once."""
    until = tmp_path / "until"
    job = await service.submit(
        ALICE, SubmitRequest("hold", {"until": str(until), "journal": str(tmp_path / "journal")})
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(service, types=["hold"], concurrency=1).run(stop))
    try:
        deadline = time.monotonic() + WAIT
        while True:
            current = await service.store.get(job.id)
            assert current is not None
            if current.status is JobStatus.PROCESSING and current.lease_until is not None:
                held = (current.lease_until - service.clock()).total_seconds()
                if held > service.settings.visibility_timeout:
                    break
            assert time.monotonic() < deadline, "the type's lease was never taken"
            await asyncio.sleep(0.05)
        assert held <= TYPE_LEASE
    finally:
        until.touch()
        stop.set()
        await worker


SHORT_LEASE = 2.0


@pytest.fixture(params=BACKENDS)
async def short_lease_service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    """``hold`` leases for 2 s, far below the queue's 30 s."""
    async with hold_leasing(request, tmp_path, SHORT_LEASE) as service:
        yield service


async def test_a_claim_takes_a_shorter_type_lease_at_once(
    short_lease_service: JobService, tmp_path: Path
) -> None:
    """The claim itself, not the first heartbeat, takes the type's lease: a worker that dies between
    the two holds the job (and any concurrency slot) for 2 s, not for the queue's 30."""
    service = short_lease_service
    payload = {"until": str(tmp_path / "until"), "journal": str(tmp_path / "journal")}
    job = await service.submit(ALICE, SubmitRequest("hold", payload))
    claimed: list[object] = []
    deadline = time.monotonic() + WAIT
    while not claimed:
        assert time.monotonic() < deadline, "the job was never delivered"
        claimed = list(
            await service.receive_claims(["hold"], 1, 1.0, "w1:1", service.settings.visibility_timeout)
        )
    current = await service.store.get(job.id)
    assert current is not None and current.status is JobStatus.PROCESSING and current.lease_until is not None
    held = (current.lease_until - service.clock()).total_seconds()
    assert 0 < held <= SHORT_LEASE
