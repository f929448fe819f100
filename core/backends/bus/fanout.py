"""In-process fan-out of bus messages to subscriptions: shared by the local and Redis buses.

Each subscription has a bounded buffer. A subscriber that falls that far behind loses its
buffer and gets ``Resync`` instead, and re-reads the store from its last cursor: a slow
browser cannot grow the server's memory, and still misses nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from core.ports import BusMessage, BusSubscription, Resync

__all__ = ["Fanout", "FanoutSubscription", "Subscribing", "SubscriptionHooks"]

DEFAULT_BUFFER = 1000


class FanoutSubscription:
    """The messages of some topics, in arrival order, from the moment it was added.

    A deque and, while its reader waits, one future (and the coroutine awaiting it): thousands
    of these live at once (one per open subscription), so each holds as few objects as it can
    (``asyncio.Queue`` holds three deques and an ``Event``; an async generator, a frame), which
    keeps memory and every cyclic-GC pass small. One reader at
    a time (every subscriber is one stream's task).
    """

    __slots__ = ("_buffer", "_limit", "_waiter", "topics")

    def __init__(self, topics: Sequence[str], limit: int = DEFAULT_BUFFER) -> None:
        self.topics = tuple(dict.fromkeys(topics))
        self._buffer: deque[BusMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._limit = limit

    def put(self, message: BusMessage) -> None:
        buffer = self._buffer
        if len(buffer) >= self._limit:
            buffer.clear()
            message = Resync("subscriber fell behind")
        buffer.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def __aiter__(self) -> FanoutSubscription:
        return self

    async def __anext__(self) -> BusMessage:
        # Its own iterator rather than an async generator: a suspended generator keeps a frame
        # per open subscription; this keeps nothing between messages but the deque.
        buffer = self._buffer
        while not buffer:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return buffer.popleft()


class Fanout:
    """Topic → subscriptions; tells its owner which topics gained their first or lost their last."""

    def __init__(self) -> None:
        self._topics: dict[str, set[FanoutSubscription]] = {}

    def add(self, subscription: FanoutSubscription) -> list[str]:
        """Register; return the topics nobody in this process listened to before."""
        new = []
        for topic in subscription.topics:
            subscribers = self._topics.setdefault(topic, set())
            if not subscribers:
                new.append(topic)
            subscribers.add(subscription)
        return new

    def remove(self, subscription: FanoutSubscription) -> list[str]:
        """Unregister; return the topics nobody in this process listens to any more."""
        gone = []
        for topic in subscription.topics:
            subscribers = self._topics.get(topic)
            if subscribers is None:
                continue
            subscribers.discard(subscription)
            if not subscribers:
                del self._topics[topic]
                gone.append(topic)
        return gone

    def deliver(self, topic: str, message: BusMessage) -> None:
        for subscription in self._topics.get(topic, ()):
            subscription.put(message)

    def deliver_many(self, topics: Iterable[str], message: BusMessage) -> None:
        for topic in topics:
            self.deliver(topic, message)

    def resync_all(self, reason: str) -> None:
        """Tell every subscription it may have missed messages."""
        marker = Resync(reason)
        for subscription in {s for subs in self._topics.values() for s in subs}:
            subscription.put(marker)

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    @property
    def subscription_count(self) -> int:
        return len({s for subs in self._topics.values() for s in subs})


class SubscriptionHooks(Protocol):
    """What a bus does beyond the fan-out when a subscription comes and goes (Redis: SUBSCRIBE)."""

    async def joined(self, subscription: FanoutSubscription) -> None:
        """The subscription was added; return once its topics' messages reach the fan-out."""

    async def left(self, topics: list[str]) -> None:
        """A subscription was removed; ``topics`` are those nobody in this process listens to now."""


class Subscribing:
    """A bus's ``subscribe`` context: the subscription added (and ``hooks.joined``) on entry,
    removed (and ``hooks.left``) on exit or on a failed entry. One small object for the
    subscription's life (a generator-based context manager keeps a generator and its frame)."""

    __slots__ = ("_fanout", "_hooks", "_subscription")

    def __init__(
        self, fanout: Fanout, subscription: FanoutSubscription, hooks: SubscriptionHooks | None = None
    ) -> None:
        self._fanout = fanout
        self._subscription = subscription
        self._hooks = hooks

    async def __aenter__(self) -> BusSubscription:
        self._fanout.add(self._subscription)
        if self._hooks is not None:
            try:
                await self._hooks.joined(self._subscription)
            except BaseException:
                await self._leave()
                raise
        return self._subscription

    async def __aexit__(self, *exc_info: object) -> None:
        await self._leave()

    async def _leave(self) -> None:
        gone = self._fanout.remove(self._subscription)
        if self._hooks is not None:
            await self._hooks.left(gone)
