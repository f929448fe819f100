"""``LocalEventBus``: events fanned out inside this process (the embedded default)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from core.backends.bus.fanout import Fanout, FanoutSubscription, Subscribing
from core.models import JobEvent
from core.ports import ALL_EVENTS, CONTROL, BusSubscription, ControlMessage, job_topic, owner_topic

__all__ = ["LocalEventBus", "event_topics"]


def event_topics(event: JobEvent) -> tuple[str, str, str]:
    """Every event goes to its job's topic, its owner's topic and the all-events topic."""
    return job_topic(event.job_id), owner_topic(event.owner), ALL_EVENTS


class LocalEventBus:
    """A real, supported bus for one process: nothing is lost while the process lives."""

    def __init__(self) -> None:
        self.fanout = Fanout()

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        self.fanout.resync_all("bus closed")

    async def publish(self, event: JobEvent) -> None:
        self.fanout.deliver_many(event_topics(event), event)

    async def publish_control(self, message: ControlMessage) -> None:
        self.fanout.deliver(CONTROL, message)

    def subscribe(self, topics: Sequence[str]) -> AbstractAsyncContextManager[BusSubscription]:
        return Subscribing(self.fanout, FanoutSubscription(topics))
