"""Shared pieces of the subscription tests: the operations, result digests, bus tricks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from core.backends.bus.local import LocalEventBus
from core.models import JobEvent
from tests.api.helpers import Server, wait_until

JOB_UPDATED = "subscription($id: ID!) { jobUpdated(id: $id) { id status version progress payload } }"
JOB_EVENTS = """
subscription($jobId: ID, $type: String, $after: String) {
  jobEvents(jobId: $jobId, type: $type, after: $after) {
    cursor kind message at
    job { id type owner version status payload }
  }
}"""


def versions(updates: list[dict[str, Any]]) -> list[int]:
    return [update["jobUpdated"]["version"] for update in updates]


def events(results: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """(job id, version, kind) of each jobEvents result."""
    return [
        (r["jobEvents"]["job"]["id"], r["jobEvents"]["job"]["version"], r["jobEvents"]["kind"])
        for r in results
    ]


def local_bus(server: Server) -> LocalEventBus:
    bus = server.service.bus
    assert isinstance(bus, LocalEventBus)
    return bus


async def unpublished(
    server: Server, change: Callable[[], Awaitable[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make ``change`` with the bus dropping its event, as an outage would: only the store has it."""

    async def drop(event: JobEvent) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(server.service.bus, "publish", drop)
        await change()


async def subscribed(server: Server, count: int) -> None:
    """Wait until ``count`` subscriptions hold the bus: a live-only feed emits nothing to wait on."""
    await wait_until(lambda: local_bus(server).fanout.subscription_count >= count, "subscriptions to start")
