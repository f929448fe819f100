"""A ``ScheduleService`` on either kind of backends, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.schedules import ScheduleService
from core.service import JobService
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: datetime = datetime(2030, 1, 1, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def settings_for(request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any) -> Settings:
    """``request.param``'s settings: ``embedded`` (SQLite under ``tmp_path``) or ``distributed``."""
    if request.param == "embedded":
        return Settings(data_dir=tmp_path, **overrides)
    make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
    return make(**overrides)


@asynccontextmanager
async def schedules_on(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock, **overrides: Any
) -> AsyncIterator[ScheduleService]:
    """Schedules and jobs (the test job types) on ``request.param``'s backends, on ``clock``."""
    settings = settings_for(request, tmp_path, **overrides)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues([t.name for t in JOB_TYPES])
        jobs = JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            clock=clock,
            transaction=backends.transaction,
        )
        assert backends.schedules is not None
        yield ScheduleService(backends.schedules, jobs)
