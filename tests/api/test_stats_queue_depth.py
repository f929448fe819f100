"""``stats.queueDepth`` counts the messages of jobs that can still run, not those of cancelled ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.stats import JobStats
from core.models import Principal
from core.service import JobService, SubmitRequest
from tests.support.services import BACKENDS, service_on

ALICE = Principal("alice")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with service_on(request, tmp_path) as service:
        yield service


async def test_a_cancelled_delayed_job_is_not_in_the_queue_depth(service: JobService) -> None:
    """Two delayed jobs, one cancelled: the queue depth is one, though both messages wait in the queue."""
    kept = await service.submit(ALICE, SubmitRequest("noop", {}, delay_seconds=600))
    cancelled = await service.submit(ALICE, SubmitRequest("noop", {}, delay_seconds=600))
    await service.cancel(ALICE, cancelled.id)
    stats = JobStats.of(await service.stats(), service.registry.names)
    [noop] = [t for t in stats.by_type if t.type == "noop"]
    assert (stats.queue_depth, noop.queue_depth, kept.id != cancelled.id) == (1, 1, True)
