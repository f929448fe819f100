"""Job types the worker tests steer from the outside (loaded with the other test types)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import BaseModel, JsonValue

from core.jobtypes import JobContext, JobType, PermanentError
from core.models import JSONValue

__all__ = ["JOB_TYPES", "LATCHES", "PROBES", "Latch", "Probe"]


@dataclass
class Latch:
    """Holds ``latch`` jobs named after it until the test opens it; counts how many wait at once."""

    opened: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)
    inside: int = 0
    most_inside: int = 0
    runs: int = 0
    cancelled: int = 0

    def entered_by(self, count: int) -> asyncio.Event:
        """An event set once ``count`` handlers are inside at the same time."""
        event = asyncio.Event()
        self._watchers.append((count, event))
        self.notify()
        return event

    def notify(self) -> None:
        """Set the ``entered_by`` events whose count of handlers inside is reached."""
        for count, event in self._watchers:
            if self.inside >= count:
                event.set()

    def __post_init__(self) -> None:
        self._watchers: list[tuple[int, asyncio.Event]] = []


LATCHES: dict[str, Latch] = {}


class LatchPayload(BaseModel):
    latch: str
    result: JsonValue = None


async def latch(ctx: JobContext, payload: LatchPayload) -> JSONValue:
    g = LATCHES[payload.latch]
    g.runs += 1
    g.inside += 1
    g.most_inside = max(g.most_inside, g.inside)
    g.entered.set()
    g.notify()
    try:
        await g.opened.wait()
    except asyncio.CancelledError:
        g.cancelled += 1
        raise
    finally:
        g.inside -= 1
        g.left.set()
    return {"latch": payload.latch, "attempt": ctx.attempt, "result": payload.result}


class ProgressPayload(BaseModel):
    steps: list[float]
    #: after its steps, the handler fails (permanently) with this message
    fail_with: str | None = None


async def report_progress(ctx: JobContext, payload: ProgressPayload) -> JSONValue:
    for percent in payload.steps:
        await ctx.progress(percent, f"at {percent}")
        await asyncio.sleep(0)
    if payload.fail_with is not None:
        raise PermanentError(payload.fail_with)
    return {"reported": len(payload.steps)}


class CountPayload(BaseModel):
    times: int


async def hammer_progress(ctx: JobContext, payload: CountPayload) -> JSONValue:
    for i in range(payload.times):
        await ctx.progress(100 * (i + 1) / payload.times)
    return {"reported": payload.times}


class Empty(BaseModel):
    pass


async def unserialisable(ctx: JobContext, payload: Empty) -> JSONValue:
    return {"when": object()}  # type: ignore[dict-item]


async def chatty(ctx: JobContext, payload: Empty) -> JSONValue:
    await ctx.log("x" * 50_000)
    return None


@dataclass
class Probe:
    """Records when ``gated`` jobs named after it start and end, and how many run at once."""

    inside: int = 0
    most_inside: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def reaches(self, count: int) -> None:
        """Wait until ``count`` handlers are inside at once."""
        while self.inside < count:
            self.entered.clear()
            await self.entered.wait()


PROBES: dict[str, Probe] = {}


class GatedPayload(BaseModel):
    probe: str
    tag: str = ""
    seconds: float = 0.0
    wait: bool = False  # hold until the probe is opened


async def gated(ctx: JobContext, payload: GatedPayload) -> JSONValue:
    probe = PROBES[payload.probe]
    probe.inside += 1
    probe.most_inside = max(probe.most_inside, probe.inside)
    probe.started.append(payload.tag)
    probe.entered.set()
    try:
        if payload.wait:
            await probe.opened.wait()
        elif payload.seconds:
            await asyncio.sleep(payload.seconds)  # the work itself: the overlaps are what is measured
    finally:
        probe.inside -= 1
        probe.finished.append(payload.tag)
    return {"tag": payload.tag}


JOB_TYPES = [
    JobType(
        "gated", "Records its overlaps; flow control tests limit it.", GatedPayload, gated, timeout_seconds=60
    ),
    JobType(
        "gated_declared",
        "Declares a concurrency of 2, 1 per key and 50 starts a second.",
        GatedPayload,
        gated,
        timeout_seconds=60,
        concurrency=2,
        rate_limit=(50, 1.0),
    ),
    JobType(
        "gated_short_lease",
        "A gated type with a 2 s lease (a dead worker's slot frees quickly).",
        GatedPayload,
        gated,
        timeout_seconds=60,
        lease_seconds=2.0,
    ),
    JobType(
        "latch",
        "Waits until the test opens its latch.",
        LatchPayload,
        latch,
        max_attempts=3,
        timeout_seconds=60,
    ),
    JobType(
        "progress", "Reports the given progress steps.", ProgressPayload, report_progress, timeout_seconds=30
    ),
    JobType("hammer", "Reports progress in a tight loop.", CountPayload, hammer_progress, timeout_seconds=30),
    JobType(
        "unserialisable", "Returns something JSON cannot hold.", Empty, unserialisable, timeout_seconds=30
    ),
    JobType("chatty", "Logs one very long line.", Empty, chatty, timeout_seconds=30),
]
