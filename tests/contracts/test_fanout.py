"""``FanoutSubscription``, the buffer behind every bus subscription: order, wake-ups, overflow."""

from __future__ import annotations

import asyncio
import gc
import weakref

from core.backends.bus.fanout import Fanout, FanoutSubscription
from core.models import Job, JobEvent, JobEventKind, new_job_id
from core.ports import Resync, job_topic

WAIT = 5.0


EVENTS = [
    JobEvent.of(Job(id="j1", type="noop", owner="alice", payload=None, version=v), JobEventKind.PROGRESS)
    for v in range(6)
]


def event(version: int) -> JobEvent:
    return EVENTS[version]


async def test_messages_come_in_order_whether_buffered_or_awaited() -> None:
    """Messages reach the reader in the order put, whether they were buffered or it was waiting."""
    subscription = FanoutSubscription([job_topic("j1")])
    subscription.put(event(1))
    subscription.put(event(2))
    messages = aiter(subscription)
    assert [await anext(messages), await anext(messages)] == [event(1), event(2)]
    waiting = asyncio.ensure_future(anext(messages))
    await asyncio.sleep(0)  # the reader is now waiting on an empty buffer
    assert not waiting.done()
    subscription.put(event(3))
    subscription.put(event(4))
    assert await asyncio.wait_for(waiting, WAIT) == event(3)
    assert await asyncio.wait_for(anext(messages), WAIT) == event(4)


async def test_a_reader_cancelled_while_waiting_leaves_the_subscription_usable() -> None:
    """A reader cancelled while it waits leaves the subscription working for the next reader."""
    subscription = FanoutSubscription([job_topic("j1")])
    messages = aiter(subscription)
    waiting = asyncio.ensure_future(anext(messages))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    subscription.put(event(1))  # nobody waits: buffered, no error
    again = aiter(subscription)
    assert await asyncio.wait_for(anext(again), WAIT) == event(1)


class Watched(FanoutSubscription):
    """A ``FanoutSubscription`` a test can hold a weak reference to."""

    __slots__ = ("__weakref__",)


async def test_a_subscription_that_left_is_freed_without_a_collection() -> None:
    """A subscription whose reader took a message and that left the fan-out is freed by reference
    counting alone (nothing of it waits for a cyclic collection or an async generator's finalizer)."""
    fanout = Fanout()
    subscription = Watched([job_topic("j1")])
    fanout.add(subscription)
    messages = aiter(subscription)
    waiting = asyncio.ensure_future(anext(messages))
    await asyncio.sleep(0)
    fanout.deliver(job_topic("j1"), event(1))
    assert await asyncio.wait_for(waiting, WAIT) == event(1)
    fanout.remove(subscription)
    gone = weakref.ref(subscription)
    gc.disable()
    try:
        del subscription, messages, waiting
        assert gone() is None
    finally:
        gc.enable()


async def test_a_subscriber_that_falls_behind_gets_resync_instead_of_its_backlog() -> None:
    """A subscription whose buffer overflows loses its backlog and gets ``Resync`` in its place."""
    subscription = FanoutSubscription([job_topic("j1")], limit=3)
    for version in range(1, 4):
        subscription.put(event(version))
    subscription.put(event(4))  # over the limit: the backlog goes, Resync takes its place
    subscription.put(event(5))
    messages = aiter(subscription)
    first = await anext(messages)
    assert isinstance(first, Resync)
    assert await anext(messages) == event(5)


async def test_fanout_delivers_to_every_subscription_of_a_topic_once() -> None:
    """Each subscription of a topic gets a message once, and only first and last subscribers change the topics."""
    fanout = Fanout()
    topic = job_topic(new_job_id())
    a, b = FanoutSubscription([topic, topic]), FanoutSubscription([topic])
    assert fanout.add(a) == [topic]
    assert fanout.add(b) == []
    fanout.deliver(topic, event(1))
    assert await anext(aiter(a)) == event(1)
    assert await anext(aiter(b)) == event(1)
    assert fanout.remove(a) == []
    assert fanout.remove(b) == [topic]
