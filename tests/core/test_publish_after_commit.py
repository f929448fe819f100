"""A committed write is answered whatever the bus does afterwards (DESIGN.md §1: the bus is a hint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from core.backends import open_backends
from core.backends.bus.redis import RedisEventBus
from core.jobtypes import JobTypeRegistry
from core.models import Principal
from core.ports import ALL_EVENTS, Resync
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from tests.support.servers import RedisServer
from tests.support.services import BACKENDS, service_on

ALICE = Principal("alice")

WAIT = 15.0


class _BrokenBus:
    """Wraps a bus whose publishes fail with an error no adapter maps."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def publish(self, event: object) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    async def publish_control(self, message: object) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with service_on(request, tmp_path) as service:
        yield service


async def test_a_bus_error_of_any_type_does_not_fail_a_stored_submit(service: JobService) -> None:
    """A publish raising an unmapped error still answers the submit with the stored job."""
    service.bus = _BrokenBus(service.bus)
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    assert (await service.get(ALICE, job.id)) is not None


async def test_a_bus_error_of_any_type_does_not_fail_a_stored_cancel(service: JobService) -> None:
    """A cancel whose event and control signal fail to publish still answers with the cancelled job."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    service.bus = _BrokenBus(service.bus)
    cancelled = await service.cancel(ALICE, job.id)
    assert cancelled.status.value == "CANCELLED"


def _abort_pooled_transports(bus: RedisEventBus) -> None:
    """Leave the publishing pool as an outage can: connections the driver thinks open, transports closed."""
    for connection in bus._client.connection_pool._available_connections:  # type: ignore[attr-defined]
        connection._writer.transport.abort()


def test_submit_right_after_a_redis_restart_answers_and_reaches_subscribers(
    own_redis: RedisServer, distributed_settings: Callable[..., Settings]
) -> None:
    """Redis stopped and started, a submit at once answers with its job, and an earlier subscriber sees it."""
    settings = distributed_settings(redis_url=own_redis.url)

    async def scenario() -> None:
        async with open_backends(settings) as backends:
            await backends.queue.ensure_queues(["noop"])
            service = JobService(
                backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings
            )
            bus = service.bus
            assert isinstance(bus, RedisEventBus)
            async with bus.subscribe([ALL_EVENTS]) as subscription:
                messages = aiter(subscription)
                await service.submit(ALICE, SubmitRequest("noop", {}))  # the pool now holds a connection
                await asyncio.wait_for(anext(messages), WAIT)
                # Given Redis restarted and the reader reconnected, the pooled transport left closed
                await asyncio.to_thread(own_redis.restart)
                assert isinstance(await asyncio.wait_for(anext(messages), WAIT), Resync)
                _abort_pooled_transports(bus)
                # When a submit comes at once
                job = await service.submit(ALICE, SubmitRequest("noop", {}))
                # Then it is answered, and the subscriber sees its event
                seen = await asyncio.wait_for(anext(messages), WAIT)
                assert getattr(seen, "job_id", None) == job.id

    # uvloop, as ``serve`` runs: a closed transport raises ``RuntimeError`` there, not ``ConnectionError``.
    uvloop.run(scenario())
