"""The Redis bus delivers the same messages in the same order whether it drains hiredis's buffer or not.

``core/backends/bus/hiredis_buffer.py`` takes replies hiredis has already parsed without a wait
each; on a redis or hiredis version it was not tested on (faked here) every reply goes through
``parse_response``. A burst of events, enough for many replies per socket read, is published on
each kind of bus and what one subscriber receives is compared.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.client import PubSub

from core.backends.bus import redis as redis_bus
from core.backends.bus.hiredis_buffer import Drain, buffered_replies
from core.backends.bus.redis import RedisEventBus
from core.models import Job, JobEvent, JobEventKind
from core.ports import ALL_EVENTS
from core.settings import Settings
from tests.api.fast.harness import fake_version
from tests.support.servers import unique_name

EVENTS = 300
WAIT = 15.0


def events() -> list[JobEvent]:
    return [
        JobEvent.of(Job(id=f"job-{n:04d}", type="noop", owner="alice", payload={}), JobEventKind.CREATED)
        for n in range(EVENTS)
    ]


async def delivered(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], int]:
    """The job ids one subscriber receives from a burst, and how many replies came from the buffer."""
    drained = 0

    def counting(pubsub: PubSub) -> Drain:
        drain = buffered_replies(pubsub)

        def counted(limit: int) -> Iterator[Any]:
            nonlocal drained
            for reply in drain(limit):
                drained += 1
                yield reply

        return counted

    monkeypatch.setattr(redis_bus, "buffered_replies", counting)
    settings = Settings(redis_url=redis_url, redis_channel_prefix=unique_name("t") + ":")
    bus = await RedisEventBus.open(settings)
    try:
        async with bus.subscribe([ALL_EVENTS]) as subscription:
            await asyncio.gather(*(bus.publish(event) for event in events()))
            received: list[str] = []
            async with asyncio.timeout(WAIT):
                async for message in subscription:
                    assert isinstance(message, JobEvent)
                    received.append(message.job_id)
                    if len(received) == EVENTS:
                        break
    finally:
        await bus.close()
    return received, drained


async def test_fast_and_stock_readers_deliver_alike(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both readers deliver every event of a burst in publish order; only the fast one drains the buffer."""
    fast, from_buffer = await delivered(redis_url, monkeypatch)
    fake_version(monkeypatch, "hiredis")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stock, stock_from_buffer = await delivered(redis_url, monkeypatch)
    assert fast == stock == [event.job_id for event in events()]
    assert from_buffer > 0
    assert stock_from_buffer == 0
