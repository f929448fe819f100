"""Redis bus specifics: a restart mid-stream, publishing while Redis is down, server-side cleanup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from core.backends.bus import redis as redis_module
from core.backends.bus.redis import RedisEventBus
from core.backends.codec import dumps, event_to_dict
from core.errors import BackendUnavailableError
from core.models import Job, JobEvent, JobEventKind, new_job_id
from core.ports import ALL_EVENTS, BusMessage, Resync
from core.settings import Settings
from tests.support.servers import RedisServer, free_port, unique_name

WAIT = 15.0


def make_event() -> JobEvent:
    return JobEvent.of(Job(id=new_job_id(), type="noop", owner="alice", payload={}), JobEventKind.CREATED)


async def next_message(messages: AsyncIterator[BusMessage]) -> BusMessage:
    return await asyncio.wait_for(anext(messages), WAIT)


async def publish_when_up(bus: RedisEventBus, event: JobEvent) -> None:
    """Publish, retrying while Redis is still coming back (the service would log and go on)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            await bus.publish(event)
            return
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
def prefix() -> str:
    return unique_name("t") + ":"


@pytest.fixture
async def bus(own_redis: RedisServer, prefix: str) -> AsyncIterator[RedisEventBus]:
    opened = await RedisEventBus.open(Settings(redis_url=own_redis.url, redis_channel_prefix=prefix))
    yield opened
    await opened.close()


async def test_restart_mid_stream_resyncs_then_keeps_delivering(
    bus: RedisEventBus, own_redis: RedisServer
) -> None:
    """After Redis restarts, each subscription gets ``Resync`` and then the events published later."""
    async with bus.subscribe([ALL_EVENTS]) as subscription:
        messages = aiter(subscription)
        before = make_event()
        await bus.publish(before)
        assert await next_message(messages) == before
        await asyncio.to_thread(own_redis.restart)
        assert isinstance(await next_message(messages), Resync)
        after = make_event()
        await publish_when_up(bus, after)
        assert await next_message(messages) == after


async def test_publish_while_redis_is_down_is_backend_unavailable(
    bus: RedisEventBus, own_redis: RedisServer
) -> None:
    """Publishing with Redis stopped raises ``BackendUnavailableError`` promptly."""
    await asyncio.to_thread(own_redis.stop)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        await bus.publish(make_event())
    assert time.monotonic() - started < 5


async def test_subscription_opened_while_down_resyncs_when_back(
    bus: RedisEventBus, own_redis: RedisServer
) -> None:
    """A subscription opened during an outage opens at once, then gets ``Resync`` and events once Redis is back."""
    await asyncio.to_thread(own_redis.stop)
    started = time.monotonic()
    async with bus.subscribe([ALL_EVENTS]) as subscription:
        assert time.monotonic() - started < 2
        await asyncio.to_thread(own_redis.start)
        messages = aiter(subscription)
        assert isinstance(await next_message(messages), Resync)
        event = make_event()
        await publish_when_up(bus, event)
        assert await next_message(messages) == event


async def test_leaving_during_an_outage_does_not_hang(bus: RedisEventBus, own_redis: RedisServer) -> None:
    """Entering and leaving subscriptions while Redis is down returns promptly."""
    async with bus.subscribe([ALL_EVENTS]):
        await asyncio.to_thread(own_redis.stop)
        started = time.monotonic()
    async with bus.subscribe(["owner:bob"]):
        pass
    assert time.monotonic() - started < 2
    assert bus.fanout.topics == []


async def test_unused_channels_are_unsubscribed_on_the_server(redis_url: str, prefix: str) -> None:
    """Redis sees a channel subscribed while a subscription uses it, and not after."""
    bus = await RedisEventBus.open(Settings(redis_url=redis_url, redis_channel_prefix=prefix))
    raw = Redis.from_url(redis_url)
    channel = f"{prefix}{ALL_EVENTS}"
    try:
        async with bus.subscribe([ALL_EVENTS]), bus.subscribe([ALL_EVENTS]):
            assert await raw.pubsub_numsub(channel) == [(channel.encode(), 1)]
        deadline = time.monotonic() + WAIT
        while await raw.pubsub_numsub(channel) != [(channel.encode(), 0)]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        await raw.aclose()
        await bus.close()


async def test_malformed_bus_messages_are_dropped(redis_url: str, prefix: str) -> None:
    """A message on a jobpulse channel that is not an event is dropped; the next event still arrives."""
    bus = await RedisEventBus.open(Settings(redis_url=redis_url, redis_channel_prefix=prefix))
    raw = Redis.from_url(redis_url)
    try:
        async with bus.subscribe([ALL_EVENTS]) as subscription:
            await raw.publish(f"{prefix}{ALL_EVENTS}", b"not an event")
            event = make_event()
            await bus.publish(event)
            assert await next_message(aiter(subscription)) == event
    finally:
        await raw.aclose()
        await bus.close()


async def test_open_without_redis_is_backend_unavailable() -> None:
    """Opening the bus on a port nobody listens on raises ``BackendUnavailableError``."""
    with pytest.raises(BackendUnavailableError):
        await RedisEventBus.open(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))


async def test_a_backlog_is_not_taken_for_a_dead_connection(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the reader works through a backlog (its PONG queued behind it), it neither reconnects nor resyncs."""
    monkeypatch.setattr(redis_module, "PING_EVERY", 0.001)
    monkeypatch.setattr(redis_module, "PONG_TIMEOUT", 0.1)
    bus = await RedisEventBus.open(Settings(redis_url=redis_url, redis_channel_prefix=prefix))
    count = 20_000
    data = dumps(event_to_dict(make_event()))

    def publish_backlog() -> None:
        # From another thread, so the bus's event loop is free to read while the backlog piles up.
        with SyncRedis.from_url(redis_url) as raw, raw.pipeline(transaction=False) as pipe:
            for _ in range(count):
                pipe.publish(f"{prefix}{ALL_EVENTS}", data)
            pipe.execute()

    delivered = 0
    done = asyncio.Event()  # every message delivered, or the connection given up (resync_all)
    deliver, resync_all = bus.fanout.deliver, bus.fanout.resync_all

    def counting(topic: str, message: BusMessage) -> None:
        nonlocal delivered
        delivered += 1
        if delivered == count:
            done.set()
        deliver(topic, message)

    def resyncing(reason: str) -> None:
        done.set()
        resync_all(reason)

    monkeypatch.setattr(bus.fanout, "deliver", counting)
    monkeypatch.setattr(bus.fanout, "resync_all", resyncing)
    try:
        async with bus.subscribe([ALL_EVENTS]):
            await asyncio.to_thread(publish_backlog)
            await asyncio.wait_for(done.wait(), WAIT)
    finally:
        await bus.close()

    # The subscription itself may fall behind (its own Resync); the connection must not be dropped.
    assert (bus.reconnects, delivered) == (0, count)
