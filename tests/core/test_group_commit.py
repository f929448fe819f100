"""``GroupCommit``: concurrent requests share batches, and each caller gets its own item's outcome."""

from __future__ import annotations

import asyncio

import pytest

from core.group_commit import GroupCommit


class Recorder:
    """A batch function that records its batches; item ``"bad"`` fails alone, ``"boom"`` fails the call."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str, items: list[str]) -> list[str | BaseException]:
        self.batches.append((key, list(items)))
        self.called.set()
        await self.release.wait()
        if "boom" in items:
            raise OSError("the whole call failed")
        return [ValueError(item) if item == "bad" else item.upper() for item in items]


async def in_flight(batch: Recorder, count: int = 1) -> None:
    """Let the loop run until ``count`` batches have gone out."""
    while len(batch.batches) < count:
        batch.called.clear()
        await batch.called.wait()


async def test_a_lone_request_goes_out_at_once_and_alone() -> None:
    """Idle: one request, one batch of one, answered with its own outcome."""
    batch = Recorder()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=10)
    assert await group.run("q", "a") == "A"
    assert batch.batches == [("q", ["a"])]


async def test_requests_made_while_one_is_in_flight_share_the_next_batch() -> None:
    """The first goes alone; the ones made meanwhile go together, at most ``limit`` per batch."""
    batch = Recorder()
    batch.release.clear()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=4)
    first = asyncio.create_task(group.run("q", "a"))
    await in_flight(batch)
    rest = [asyncio.create_task(group.run("q", item)) for item in "bcdefg"]
    batch.release.set()
    assert await first == "A"
    assert await asyncio.gather(*rest) == list("BCDEFG")
    assert batch.batches == [("q", ["a"]), ("q", list("bcde")), ("q", list("fg"))]


async def test_keys_are_batched_apart() -> None:
    """Requests for different keys never share a batch."""
    batch = Recorder()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=10)
    assert await asyncio.gather(group.run("q1", "a"), group.run("q2", "b"), group.run("q1", "c")) == list(
        "ABC"
    )
    assert sorted(batch.batches) == [("q1", ["a", "c"]), ("q2", ["b"])]


async def test_a_failed_item_fails_only_its_caller() -> None:
    """An item the batch refused raises in its own caller; the others get their results."""
    batch = Recorder()
    batch.release.clear()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=10)
    first = asyncio.create_task(group.run("q", "a"))
    await in_flight(batch)
    together = asyncio.gather(
        group.run("q", "b"), group.run("q", "bad"), group.run("q", "c"), return_exceptions=True
    )
    batch.release.set()
    await first
    b, bad, c = await together
    assert (b, c) == ("B", "C")
    assert isinstance(bad, ValueError)
    assert batch.batches[1] == ("q", ["b", "bad", "c"])


async def test_a_failed_call_fails_every_caller_of_that_batch_only() -> None:
    """When the batch call itself fails, each of its callers gets the error; the next batch is unaffected."""
    batch = Recorder()
    batch.release.clear()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=2)
    first = asyncio.create_task(group.run("q", "a"))
    await in_flight(batch)
    doomed = asyncio.gather(group.run("q", "boom"), group.run("q", "b"), return_exceptions=True)
    fine = asyncio.create_task(group.run("q", "c"))
    batch.release.set()
    assert await first == "A"
    assert [type(e) for e in await doomed] == [OSError, OSError]
    assert await fine == "C"


async def test_a_cancelled_caller_leaves_the_others_their_outcomes() -> None:
    """Cancelling one waiting caller does not disturb the batch it was part of."""
    batch = Recorder()
    batch.release.clear()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=10)
    first = asyncio.create_task(group.run("q", "a"))
    await in_flight(batch)
    gone = asyncio.create_task(group.run("q", "b"))
    kept = asyncio.create_task(group.run("q", "c"))
    await asyncio.sleep(0)
    gone.cancel()
    batch.release.set()
    assert await first == "A" and await kept == "C"
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_drain_waits_for_every_request() -> None:
    """``drain`` returns once every request made so far was answered."""
    batch = Recorder()
    batch.release.clear()
    group: GroupCommit[str, str, str] = GroupCommit(batch, limit=10)
    tasks = [asyncio.create_task(group.run("q", item)) for item in "abc"]
    await in_flight(batch)
    asyncio.get_running_loop().call_later(0.01, batch.release.set)
    await group.drain()
    assert batch.release.is_set()
    assert await asyncio.gather(*tasks) == list("ABC")


def test_limit_must_be_positive() -> None:
    """A batch limit below one is refused."""
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), limit=0)
