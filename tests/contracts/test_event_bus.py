"""The ``EventBus`` contract, run against every bus (in-process and Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from core.models import Job, JobEvent, JobEventKind, new_job_id
from core.ports import (
    ALL_EVENTS,
    CONTROL,
    BusMessage,
    BusSubscription,
    CancelRequested,
    EventBus,
    job_topic,
    owner_topic,
)

WAIT = 5.0


def make_event(owner: str = "alice", version: int = 1) -> JobEvent:
    job = Job(id=new_job_id(), type="noop", owner=owner, payload={"secret": 1}, version=version)
    return JobEvent.of(job, JobEventKind.CREATED, "submitted")


async def next_message(messages: AsyncIterator[BusMessage]) -> BusMessage:
    return await asyncio.wait_for(anext(messages), WAIT)


async def nothing_more(subscription: BusSubscription, bus: EventBus) -> bool:
    """True if ``subscription`` got nothing but a marker event published after what was under test."""
    marker = make_event(owner="marker")
    async with bus.subscribe([owner_topic("marker")]) as marks:
        await bus.publish(marker)
        await next_message(aiter(marks))  # everything published before it has been delivered too
    messages = aiter(subscription)
    while True:
        pending = asyncio.ensure_future(anext(messages))
        await asyncio.sleep(0)
        if not pending.done():
            pending.cancel()
            return True
        if pending.result() != marker:
            return False


async def test_ping_answers(bus: EventBus) -> None:
    """A reachable bus answers ``ping``."""
    await bus.ping()


async def test_event_reaches_job_owner_and_all_subscribers(bus: EventBus) -> None:
    """An event is delivered on its job's topic, its owner's topic and the all-events topic."""
    event = make_event()
    async with (
        bus.subscribe([job_topic(event.job_id)]) as by_job,
        bus.subscribe([owner_topic("alice")]) as by_owner,
        bus.subscribe([ALL_EVENTS]) as everything,
    ):
        await bus.publish(event)
        for subscription in (by_job, by_owner, everything):
            assert await next_message(aiter(subscription)) == event


async def test_event_arrives_without_payload(bus: EventBus) -> None:
    """Published events carry the job without its payload."""
    event = make_event()
    async with bus.subscribe([ALL_EVENTS]) as everything:
        await bus.publish(event)
        received = await next_message(aiter(everything))
    assert isinstance(received, JobEvent) and received.job.payload is None


async def test_other_topics_do_not_receive_the_event(bus: EventBus) -> None:
    """A subscriber of another job or owner gets nothing."""
    async with bus.subscribe([job_topic(new_job_id()), owner_topic("bob")]) as unrelated:
        await bus.publish(make_event(owner="alice"))
        assert await nothing_more(unrelated, bus)


async def test_publish_right_after_subscribe_is_never_missed(bus: EventBus) -> None:
    """Whatever is published once ``subscribe`` has returned is delivered, every time."""
    for _ in range(20):
        event = make_event()
        async with bus.subscribe([job_topic(event.job_id)]) as subscription:
            await bus.publish(event)
            assert await next_message(aiter(subscription)) == event


async def test_events_arrive_in_publish_order(bus: EventBus) -> None:
    """One publisher's events reach a subscriber in the order they were published."""
    events = [make_event(owner="alice", version=v) for v in range(1, 6)]
    async with bus.subscribe([owner_topic("alice")]) as subscription:
        for event in events:
            await bus.publish(event)
        messages = aiter(subscription)
        assert [await next_message(messages) for _ in events] == events


async def test_every_subscription_of_a_topic_receives(bus: EventBus) -> None:
    """Two subscriptions to one topic both get each event."""
    event = make_event()
    async with bus.subscribe([ALL_EVENTS]) as one, bus.subscribe([ALL_EVENTS]) as two:
        await bus.publish(event)
        assert await next_message(aiter(one)) == event
        assert await next_message(aiter(two)) == event


async def test_control_messages_reach_control_subscribers_only(bus: EventBus) -> None:
    """A cancel request is delivered on the control topic and nowhere else."""
    job_id = new_job_id()
    async with bus.subscribe([CONTROL]) as control, bus.subscribe([ALL_EVENTS, job_topic(job_id)]) as events:
        await bus.publish_control(CancelRequested(job_id))
        assert await next_message(aiter(control)) == CancelRequested(job_id)
        assert await nothing_more(events, bus)


async def test_leaving_a_subscription_releases_its_topics(bus: EventBus) -> None:
    """Once every subscription of a topic is left, the bus no longer listens to it."""
    async with bus.subscribe([ALL_EVENTS]), bus.subscribe([ALL_EVENTS, CONTROL]):
        pass
    assert bus.fanout.topics == []  # type: ignore[attr-defined]


async def test_publish_without_subscribers_is_fine(bus: EventBus) -> None:
    """Publishing to topics nobody listens to succeeds."""
    await bus.publish(make_event())
    await bus.publish_control(CancelRequested(new_job_id()))



async def test_a_burst_bigger_than_one_read_arrives_whole(bus: EventBus) -> None:
    """Hundreds of events published at once (many socket reads, many replies parsed per read)
    all reach each subscription exactly once, in the order they were published, with no
    ``Resync`` (within the buffers' limit)."""
    first = make_event()
    job = first.job
    events = [first] + [
        JobEvent.of(replace(job, version=v, progress_message="x" * (v % 50)), JobEventKind.PROGRESS)
        for v in range(2, 451)
    ]
    async with (
        bus.subscribe([job_topic(job.id)]) as one,
        bus.subscribe([owner_topic(job.owner), job_topic(job.id)]) as two,
    ):
        # All at once: more concurrent publishers than a Redis client's connection pool (100).
        await asyncio.gather(*(bus.publish(e) for e in events))
        messages = aiter(one)
        got = [await next_message(messages) for _ in range(len(events))]
        assert [m.version for m in got if isinstance(m, JobEvent)] == [e.version for e in events]
        messages = aiter(two)
        got = [await next_message(messages) for _ in range(len(events) * 2)]
        assert sorted(m.version for m in got if isinstance(m, JobEvent)) == sorted(
            [e.version for e in events] * 2
        )
        assert await nothing_more(one, bus)
