"""Worker fixtures: a real embedded service (SQLite store and queue, in-process bus) per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.models import Job, JobEvent, JobEventKind, Principal, utcnow
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.workers.jobtypes import LATCHES, Latch
from workers.registry import load_registry
from workers.runtime import Worker

TEST_MODULES = "tests.support.jobtypes,tests.workers.jobtypes"
ADMIN = Principal("tester", "admin")

MakeService = Callable[..., Awaitable[JobService]]


@pytest.fixture
async def make_service(tmp_path: Path) -> AsyncIterator[MakeService]:
    """Build services over one data directory; each call may override settings (and the clock), and
    with ``one_transaction=False`` leave the store's transaction unused (the ports' path, as on SQS)."""
    async with AsyncExitStack() as stack:

        async def make(
            clock: Callable[[], Any] | None = None, *, one_transaction: bool = True, **overrides: Any
        ) -> JobService:
            values: dict[str, Any] = {
                "data_dir": tmp_path,
                # The embedded backends, whatever the environment names.
                "mongodb_url": None,
                "sqs_endpoint_url": None,
                "redis_url": None,
                "job_modules": TEST_MODULES,
                "backoff_base_seconds": 0,
                "wait_time_seconds": 1,
                "shutdown_grace_seconds": 5,
                **overrides,
            }
            settings = Settings(**values)
            backends = await stack.enter_async_context(open_backends(settings))
            registry = load_registry(settings)
            extra = {"clock": clock} if clock is not None else {}
            return JobService(
                backends.store,
                backends.queue,
                backends.bus,
                registry,
                settings,
                **extra,
                transaction=backends.transaction if one_transaction else None,
            )

        yield make


@pytest.fixture
async def service(make_service: MakeService) -> JobService:
    """The default service: tiny backoff, short long-poll."""
    return await make_service()


@pytest.fixture
def latches() -> Iterator[Callable[[str], Latch]]:
    """Make named latches for ``latch`` jobs; forgotten after the test."""
    made: list[str] = []

    def make(name: str) -> Latch:
        LATCHES[name] = made_latch = Latch()
        made.append(name)
        return made_latch

    yield make
    for name in made:
        LATCHES.pop(name, None)


async def submit(service: JobService, type: str, payload: dict[str, Any], **options: Any) -> Job:
    """Submit one job as the test admin."""
    return await service.submit(ADMIN, SubmitRequest(type=type, payload=payload, **options))


async def reload(service: JobService, job: Job) -> Job:
    """The job as stored now."""
    stored = await service.store.get(job.id)
    assert stored is not None
    return stored


async def events(service: JobService, job: Job) -> list[JobEvent]:
    """Every stored event of the job, in version order."""
    return await service.store.list_events(after=None, limit=10_000, job_id=job.id)


async def kinds(service: JobService, job: Job) -> list[JobEventKind]:
    """The kinds of the job's events, in order."""
    return [e.kind for e in await events(service, job)]


async def drain(service: JobService, **options: Any) -> Worker:
    """Run a burst worker until the queue is drained and nothing runs (bounded, so a bug fails fast)."""
    worker = Worker(service, burst=True, **options)
    async with asyncio.timeout(30):
        await worker.run()
    return worker


def on_event(service: JobService, job_id: str, kind: JobEventKind) -> asyncio.Event:
    """An event set when the service writes an event of ``kind`` for the job."""
    seen = asyncio.Event()

    def listener(event: JobEvent) -> None:
        if event.job_id == job_id and event.kind is kind:
            seen.set()

    service.listeners.append(listener)
    return seen


class FakeClock:
    """A settable clock for the service: leases expire when the test says so."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
