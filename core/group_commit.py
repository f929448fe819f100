"""``GroupCommit``: concurrent requests of one kind go to the server together, like a group commit.

The first request for a key goes out at once, alone; every request for that key made while it
is in flight waits for the next call, which takes up to ``limit`` of them. No added latency
when idle, and under load one round trip (one journal write, one signed HTTP request) serves
many callers. Each caller still gets its own outcome: the batch function answers per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[K, T, R]):
    """``await run(key, item)``: the outcome of ``item`` once the batch that carried it answered.

    ``batch(key, items)`` does the work for up to ``limit`` items and returns one outcome per
    item, in order (a result, or an exception to raise in that item's caller). If it raises
    instead, every item of the batch gets that error.
    """

    def __init__(self, batch: Callable[[K, list[T]], Awaitable[list[R | BaseException]]], limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._batch = batch
        self._limit = limit
        self._pending: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._flushers: dict[K, asyncio.Task[None]] = {}

    async def run(self, key: K, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((item, future))
        if key not in self._flushers:
            self._flushers[key] = asyncio.create_task(self._flush(key))
        return await future

    async def drain(self) -> None:
        """Wait for every request made so far to be answered."""
        while self._flushers:
            await asyncio.gather(*self._flushers.values(), return_exceptions=True)

    async def _flush(self, key: K) -> None:
        try:
            while pending := self._pending.get(key):
                taken, self._pending[key] = pending[: self._limit], pending[self._limit :]
                await self._send(key, taken)
        finally:
            del self._flushers[key]
            for _, future in self._pending.pop(key, []):
                future.cancel()  # only left over when this task was cancelled

    async def _send(self, key: K, taken: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._batch(key, [item for item, _ in taken])
            if len(outcomes) != len(taken):
                raise RuntimeError(f"batch answered {len(outcomes)} outcomes for {len(taken)} items")
        except asyncio.CancelledError:
            for _, future in taken:
                future.cancel()
            raise
        except Exception as exc:  # handed to every caller of the batch
            outcomes = [exc] * len(taken)
        for (_, future), outcome in zip(taken, outcomes, strict=True):
            if future.done():
                continue  # its caller was cancelled: the work was done all the same
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
