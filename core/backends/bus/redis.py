"""``RedisEventBus``: job events across processes over Redis pub/sub (the distributed bus).

Each topic is the channel ``<prefix><topic>``. A process holds one pub/sub connection, read by
one task that fans messages out in-process (``Fanout``); a channel is subscribed while at least
one local subscription wants it. ``subscribe`` returns only once Redis confirmed the
SUBSCRIBE, so whoever reads the store right after entering misses nothing (DESIGN.md §5).

When the connection drops (Redis restarted, network cut, or a ping unanswered), the reader
reconnects with backoff, subscribes every live channel again, waits for the confirmations and
only then sends ``Resync`` to every subscription: each re-reads the store from its cursor, so
what was published during the outage is not lost. A subscription opened while Redis is down
is registered at once and gets that ``Resync`` when Redis is back. Publishing while Redis is
down raises ``BackendUnavailableError`` (after one more try on a fresh connection); the caller
logs it and carries on (the store is the truth).

Publishes go out through a ``GroupCommit``: those made while a pipeline is in flight share the
next one, in the order they were made. One connection serves any number of concurrent
publishers (with a connection each, a burst larger than the connection pool failed with "Too
many connections" and those events never reached their subscribers), and a job's events leave in
version order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError

from core.backends.bus.fanout import Fanout, FanoutSubscription, Subscribing
from core.backends.bus.hiredis_buffer import buffered_replies
from core.backends.bus.local import event_topics
from core.backends.codec import dumps, event_from_dict, event_to_dict, loads
from core.errors import BackendUnavailableError
from core.group_commit import GroupCommit
from core.models import JobEvent
from core.ports import (
    CONTROL,
    BusMessage,
    BusSubscription,
    CancelRequested,
    ControlMessage,
    ControlsChanged,
)
from core.settings import Settings

__all__ = ["RedisEventBus"]

log = structlog.get_logger("jobpulse.redis")

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0
SUBSCRIBE_TIMEOUT = 5.0  # no confirmation by then: treat the connection as broken
READ_POLL = 0.5  # how often the reader looks up from the socket (pings, a broken flag)
PING_EVERY = 5.0  # the reader's own liveness check: a silent half-open socket is caught too
PONG_TIMEOUT = 10.0
DRAIN_MAX = 1000  # replies handled from the parser's buffer before the reader looks up again
PUBLISH_BATCH = 500  # publishes per pipeline
PUBLISH_TRIES = 2  # a failed pipeline is sent once more, on a fresh connection
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0
_PONG = b"jobpulse-ping"


class _LostConnectionError(Exception):
    """The pub/sub connection must be rebuilt."""


class RedisEventBus:
    """Events over Redis pub/sub, fanned out in-process; see the module docstring."""

    def __init__(self, client: Redis, subscriber: Redis, prefix: str) -> None:
        self.fanout = Fanout()
        self._client = client  # PUBLISH and PING
        self._subscriber = subscriber  # the pub/sub connection: never retried behind our back
        self._prefix = prefix
        self._publishes: GroupCommit[str, tuple[Iterable[str], bytes], None] = GroupCommit(
            self._publish_batch, PUBLISH_BATCH
        )
        self._pubsub: PubSub | None = None
        self._subscribed: set[str] = set()  # channels SUBSCRIBEd on the current connection
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._resync_after: list[asyncio.Future[None]] | None = None
        self._broken: str | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self._reader: asyncio.Task[None] | None = None
        #: how many times the pub/sub connection was rebuilt (for tests and metrics)
        self.reconnects = 0

    @classmethod
    async def open(cls, settings: Settings) -> RedisEventBus:
        """Connect (raising ``BackendUnavailableError`` if Redis does not answer) and start reading."""
        if settings.redis_url is None:
            raise ValueError("RedisEventBus needs settings.redis_url")
        common: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_keepalive": True}
        client = Redis.from_url(
            settings.redis_url,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            **common,
        )
        # Any error on the pub/sub connection must reach the reader, which resubscribes and
        # resyncs: a silent reconnect inside the driver would lose messages unnoticed.
        subscriber = Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 0), **common)
        bus = cls(client, subscriber, settings.redis_channel_prefix)
        try:
            await bus.ping()
            bus._reader = asyncio.create_task(bus._run(), name="jobpulse-redis-reader")
            await asyncio.wait_for(bus._connected.wait(), CONNECT_TIMEOUT)
        except BaseException as exc:
            await bus.close()
            if isinstance(exc, TimeoutError):
                raise BackendUnavailableError("Redis pub/sub did not connect") from exc
            raise
        return bus

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError(f"Redis ping failed: {exc}") from exc

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
        await self._publishes.drain()
        await self._client.aclose()
        await self._subscriber.aclose()
        self.fanout.resync_all("bus closed")

    # -- publishing -------------------------------------------------------------------------
    def _channel(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    async def _publish(self, topics: Iterable[str], data: bytes) -> None:
        await self._publishes.run("", (topics, data))

    async def _publish_batch(
        self, _: str, messages: list[tuple[Iterable[str], bytes]]
    ) -> list[None | BaseException]:
        """One pipeline for every publish that waited; an error fails them all (each caller logs).

        A failed pipeline is sent once more on a fresh connection: after an outage a pooled
        connection may hold a closed transport, which uvloop reports as ``RuntimeError`` (not a
        ``ConnectionError``, so the driver's own retry passes it by). A message sent twice is
        harmless: subscribers drop what they have seen (DESIGN.md §5).
        """
        for attempt in range(PUBLISH_TRIES):
            try:
                await self._send_pipeline(messages)
                break
            except (RedisError, OSError, RuntimeError) as exc:
                await self._drop_pooled_connections()
                if attempt + 1 == PUBLISH_TRIES:
                    raise BackendUnavailableError(f"Redis publish failed: {exc!r}") from exc
                log.info("redis publish failed; trying again on a fresh connection", error=repr(exc))
        outcomes: list[None | BaseException] = [None] * len(messages)
        return outcomes

    async def _send_pipeline(self, messages: list[tuple[Iterable[str], bytes]]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for topics, data in messages:
                for topic in topics:
                    pipe.publish(self._channel(topic), data)
            await pipe.execute()

    async def _drop_pooled_connections(self) -> None:
        """Close the publishing pool's connections so the next command opens a fresh one."""
        try:
            await self._client.connection_pool.disconnect()
        except Exception as exc:  # a broken transport may fail to close too; it is dropped anyway
            log.debug("closing pooled redis connections failed", error=repr(exc))

    async def publish(self, event: JobEvent) -> None:
        await self._publish(event_topics(event), dumps(event_to_dict(event)))

    async def publish_control(self, message: ControlMessage) -> None:
        if isinstance(message, ControlsChanged):
            await self._publish([CONTROL], dumps({"type_controls": message.type}))
        else:
            await self._publish([CONTROL], dumps({"job_id": message.job_id}))

    # -- subscribing ------------------------------------------------------------------------
    def subscribe(self, topics: Sequence[str]) -> AbstractAsyncContextManager[BusSubscription]:
        return Subscribing(self.fanout, FanoutSubscription(topics), self)

    async def joined(self, subscription: FanoutSubscription) -> None:
        """``SubscriptionHooks``: wait until Redis confirmed the subscription's channels."""
        await self._confirm([self._channel(t) for t in subscription.topics])

    async def left(self, topics: list[str]) -> None:
        """``SubscriptionHooks``: UNSUBSCRIBE the channels nobody here listens to any more."""
        await self._unsubscribe(topics)

    async def _send_subscribe(self, pubsub: PubSub, channels: list[str]) -> None:
        """SUBSCRIBE the channels not subscribed yet; each gets a confirmation to wait for."""
        new = [c for c in channels if c not in self._subscribed]
        if not new:
            return
        # Bookkeeping before the await: a concurrent caller sees these channels as pending.
        self._subscribed.update(new)
        loop = asyncio.get_running_loop()
        for channel in new:
            self._confirmations.setdefault(channel, deque()).append(loop.create_future())
        await pubsub.execute_command("SUBSCRIBE", *new)

    def _live_pubsub(self) -> PubSub | None:
        """The pub/sub connection if it is up; never one the driver would silently reconnect."""
        pubsub = self._pubsub
        if pubsub is None or self._broken or pubsub.connection is None or not pubsub.connection.is_connected:
            return None
        return pubsub

    async def _confirm(self, channels: list[str]) -> None:
        pubsub = self._live_pubsub()
        if pubsub is None:
            return  # the reconnect subscribes every live channel, then sends Resync
        try:
            await self._send_subscribe(pubsub, channels)
            # Replies arrive in order: the newest pending confirmation covers the earlier ones.
            waits = [q[-1] for c in channels if (q := self._confirmations.get(c))]
            if waits:
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*waits)), SUBSCRIBE_TIMEOUT)
        except Exception as exc:  # the subscriber never sees driver errors: Resync follows
            self._mark_broken(f"subscribe failed: {exc!r}")

    async def _unsubscribe(self, topics: list[str]) -> None:
        channels = [c for c in map(self._channel, topics) if c in self._subscribed]
        pubsub = self._live_pubsub()
        if not channels or pubsub is None:
            return
        self._subscribed.difference_update(channels)
        try:
            await pubsub.execute_command("UNSUBSCRIBE", *channels)
        except Exception as exc:
            self._mark_broken(f"unsubscribe failed: {exc!r}")

    def _mark_broken(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason

    # -- the reader -------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        first = True
        while not self._closed:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                self._broken = None
                self._pubsub = pubsub
                await self._send_subscribe(pubsub, [self._channel(t) for t in self.fanout.topics])
                if not first:
                    self._resync_after = [f for q in self._confirmations.values() for f in q]
                first = False
                self._connected.set()
                delay = BACKOFF_FIRST
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, the cure is the same: rebuild and resync
                if not self._closed:
                    log.warning(
                        "redis pub/sub connection lost; reconnecting", error=repr(exc), retry_in=delay
                    )
            finally:
                await self._disconnected(pubsub)
            if self._closed:
                return
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    async def _disconnected(self, pubsub: PubSub) -> None:
        self._pubsub = None
        self._connected.clear()
        self._subscribed.clear()
        self._resync_after = None
        for waiting in self._confirmations.values():
            for future in waiting:
                if not future.done():
                    future.set_result(None)  # the subscriber goes on; Resync follows the reconnect
        self._confirmations.clear()
        try:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        except (RedisError, OSError):
            pass

    async def _read(self, pubsub: PubSub) -> None:
        drain = buffered_replies(pubsub)
        pinged_at: float | None = None
        last_ping = time.monotonic()
        while not self._closed:
            if self._broken:
                raise _LostConnectionError(self._broken)
            if self._resync_after is not None and all(f.done() for f in self._resync_after):
                self._resync_after = None
                self.fanout.resync_all("redis reconnected")
            now = time.monotonic()
            if pinged_at is not None and now - pinged_at > PONG_TIMEOUT:
                raise _LostConnectionError(f"no answer to PING in {PONG_TIMEOUT}s")
            if pinged_at is None and now - last_ping > PING_EVERY:
                pinged_at = last_ping = now
                await pubsub.execute_command("PING", _PONG)
            response = await pubsub.parse_response(block=False, timeout=READ_POLL)
            if response is None:
                continue
            # Any message read proves the connection alive: under a backlog our PONG waits in line
            # behind the published messages, and timing it out would reconnect and Resync everyone.
            pinged_at = None
            last_ping = time.monotonic()
            self._handle(response)
            # The rest of what that read brought is parsed already: handled without a wait each.
            for response in drain(DRAIN_MAX):
                self._handle(response)

    def _handle(self, response: Any) -> None:
        """One pub/sub reply as hiredis parsed it: ``[kind, channel, data]`` (or a PONG)."""
        if not isinstance(response, list) or len(response) < 3:
            return  # our PONG: liveness is counted by the caller
        kind = response[0]
        if kind == b"message":
            self._dispatch(_text(response[1]), response[2])
        elif kind == b"subscribe":
            waiting = self._confirmations.get(_text(response[1]))
            if waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)

    def _dispatch(self, channel: str, data: bytes) -> None:
        if not channel.startswith(self._prefix):
            return
        topic = channel[len(self._prefix) :]
        try:
            body = loads(data)
            bus_message: BusMessage
            if topic != CONTROL:
                bus_message = event_from_dict(body)
            elif "type_controls" in body:
                bus_message = ControlsChanged(body["type_controls"])
            else:
                bus_message = CancelRequested(body["job_id"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed bus message dropped", channel=channel, error=repr(exc))
            return
        self.fanout.deliver(topic, bus_message)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
