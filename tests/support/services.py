"""A ``JobService`` on either kind of backends, for tests that run the same checks on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.models import utcnow
from core.service import JobService
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES

BACKENDS = ["embedded", "distributed"]


class OffsetClock:
    """``utcnow`` plus an offset the test moves forward (past the sweeper's grace, an expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@asynccontextmanager
async def service_on(
    request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> AsyncIterator[JobService]:
    """A service with the test job types on ``request.param``'s backends: ``embedded`` (SQLite
    under ``tmp_path``) or ``distributed`` (MongoDB, SQS and Redis of this test's own)."""
    if request.param == "embedded":
        settings = Settings(data_dir=tmp_path, **overrides)
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        settings = make(**overrides)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues([t.name for t in JOB_TYPES])
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            transaction=backends.transaction,
        )


@asynccontextmanager
async def clocked_service_on(
    request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> AsyncIterator[JobService]:
    """``service_on``, its clock an ``OffsetClock`` the test moves."""
    async with service_on(request, tmp_path, **overrides) as service:
        service.clock = OffsetClock()
        yield service
