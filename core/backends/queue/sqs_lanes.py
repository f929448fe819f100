"""Receiving from SQS lanes: each type's high-priority lane first, then its main queue, fairly.

The lanes of the types asked for are polled as below, the high lanes first. First a
short poll of every high lane, concurrently, then of every main lane with what is left of
``max_messages``, split between them (the remainder rotates, so with more lanes than messages each
still gets its turn), so no type starves another; the shares that empty queues leave unused go to
the queues that came back full. Only when all are empty do long polls (at most
``MULTI_TYPE_POLL_SECONDS``) of every lane run, and the first to bring messages answers: one busy
lane among idle ones is not held to its share nor to the idle queues' polls. The polls still
running are not cancelled (a cancelled ReceiveMessage may have taken messages on the server,
hidden until their visibility timeout); what they bring is handed out by the next receives, high
lanes first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

from core.ports import Delivery

__all__ = ["CALL_READ_SECONDS", "MULTI_TYPE_POLL_SECONDS", "Lane", "LaneReceiver", "whole_seconds"]

#: the longest long poll of one lane while several are polled at once
MULTI_TYPE_POLL_SECONDS = 2
#: how long an SQS call other than a long poll may take to answer (``sqs.py``'s read timeout)
CALL_READ_SECONDS = 3

#: one queue a type's jobs wait in: (type, high lane?)
Lane = tuple[str, bool]


def whole_seconds(value: float, limit: int) -> int:
    """SQS takes whole seconds: round up (never show a message early), within ``[0, limit]``."""
    return max(0, min(limit, math.ceil(value - 1e-6)))


def _shares(types: Sequence[Lane], max_messages: int, start: int) -> list[tuple[Lane, int]]:
    """Split ``max_messages`` over the lanes ``types`` from ``start`` on: fair now, and over rounds."""
    n = len(types)
    order = [types[(start + i) % n] for i in range(n)]
    if n >= max_messages:
        return [(t, 1) for t in order[:max_messages]]
    base, extra = divmod(max_messages, n)
    return [(t, base + (1 if i < extra else 0)) for i, t in enumerate(order)]


class LaneReceiver:
    """The receiving half of ``SqsJobQueue``: ``_receive_many`` over the lanes of some types."""

    _in_flight: dict[Lane, asyncio.Task[list[Delivery]]]
    _ready: dict[Lane, list[Delivery]]
    _rotation: int

    async def _receive_from(self, lane: Lane, count: int, wait: int, visibility: int) -> list[Delivery]:
        """One ReceiveMessage on ``lane`` (``SqsJobQueue`` has it)."""
        raise NotImplementedError

    async def _receive_many(
        self, types: list[str], max_messages: int, wait_seconds: float, visibility: int
    ) -> list[Delivery]:
        """Answer as soon as any lane has messages, with up to ``max_messages``, high lanes first.

        First a short poll of the high lanes, then of the main lanes with what is left (shares
        split as in ``_shares``; the shares the empty lanes left unused go to those that came back
        full). Only if that finds nothing, long polls of the high and of the main lanes, each set
        with its shares; the first to bring messages answers. The others are never cancelled (a
        cancelled ReceiveMessage may have taken messages on the server, hidden until their
        visibility timeout): they run on, and what they bring is handed out by the next receives.
        """
        deadline = time.monotonic() + wait_seconds
        high: list[Lane] = [(t, True) for t in types]
        main: list[Lane] = [(t, False) for t in types]
        lanes = [*high, *main]
        ready = self._take_ready(lanes, max_messages)
        if ready:
            return ready
        rotation = self._rotation  # the main lanes take their turns as if there were no high ones
        await self._short_round(high, max_messages, visibility)
        self._rotation = rotation
        left = max_messages - sum(len(self._ready.get(lane, ())) for lane in high)
        if left > 0:
            await self._short_round(main, left, visibility)
        while not (ready := self._take_ready(lanes, max_messages)) and time.monotonic() < deadline:
            wait = whole_seconds(
                min(MULTI_TYPE_POLL_SECONDS, deadline - time.monotonic()), MULTI_TYPE_POLL_SECONDS
            )
            # Each set of lanes gets its shares of max_messages: a turn for a main lane every round
            # as before the high lanes existed, whatever their number (at most twice the messages
            # come back; the rest wait in ``_ready`` for the next receive).
            for group in (high, main):
                idle = [lane for lane in group if lane not in self._in_flight]
                for lane, count in _shares(idle, max_messages, self._rotation) if idle else []:
                    task = asyncio.create_task(self._receive_from(lane, count, wait, visibility))
                    self._in_flight[lane] = task
            self._rotation = (self._rotation + 1) % len(types)
            polls = {self._in_flight[lane] for lane in lanes if lane in self._in_flight}
            remaining = max(0.0, deadline - time.monotonic())
            # A poll may finish empty: keep waiting on the others until one brings something.
            while polls and not any(self._ready.get(lane) for lane in lanes):
                done, polls = await asyncio.wait(
                    polls, timeout=remaining + CALL_READ_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break
                self._collect_done()
        return ready

    def _collect_done(self) -> None:
        """Move finished background polls' messages to ``_ready`` (a failed poll raises here)."""
        for lane, task in list(self._in_flight.items()):
            if task.done():
                del self._in_flight[lane]
                self._ready.setdefault(lane, []).extend(task.result())

    def _take_ready(self, lanes: Sequence[Lane], max_messages: int) -> list[Delivery]:
        """Up to ``max_messages`` received messages, in the order of ``lanes`` (high lanes first)."""
        self._collect_done()
        taken: list[Delivery] = []
        for lane in lanes:
            waiting = self._ready.get(lane)
            if waiting:
                room = max_messages - len(taken)
                taken.extend(waiting[:room])
                del waiting[:room]
        return taken

    async def _short_round(self, lanes: list[Lane], max_messages: int, visibility: int) -> None:
        """Short-poll the lanes with no poll in flight; the empty ones' shares go to the full ones."""
        idle = [lane for lane in lanes if lane not in self._in_flight]
        if not idle:
            return
        shares = _shares(idle, max_messages, self._rotation)
        self._rotation = (self._rotation + 1) % len(lanes)
        while shares:
            rounds = await asyncio.gather(*(self._receive_from(lane, n, 0, visibility) for lane, n in shares))
            for (lane, _), batch in zip(shares, rounds, strict=True):
                self._ready.setdefault(lane, []).extend(batch)
            left = max_messages - sum(len(v) for lane, v in self._ready.items() if lane in lanes)
            full = [lane for (lane, n), batch in zip(shares, rounds, strict=True) if len(batch) == n]
            if left <= 0 or not full:
                return
            shares = _shares(full, left, 0)
