"""``MemoryReleaser``: after a wave of closed websockets, one collection and one heap trim off the loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

from starlette.routing import WebSocketRoute

from api.memory import MemoryReleaser, malloc_trim
from api.view import GraphQLView
from tests.api.helpers import ALICE, DEADLINE, Server


class FakeTrim:
    """Records calls (from the worker thread) and lets the test await them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[tuple[int, bool]] = []
        self.called = asyncio.Event()

    def __call__(self, pad: int) -> int:
        self.calls.append((pad, threading.current_thread() is threading.main_thread()))
        self.loop.call_soon_threadsafe(self.called.set)
        return 1


async def test_trims_once_per_wave_in_a_worker_thread() -> None:
    """A wave of closes past the threshold trims once, off the event loop's thread."""
    trim = FakeTrim(asyncio.get_running_loop())
    releaser = MemoryReleaser(threshold=3, delay=0, trim=trim)
    releaser.closed()
    releaser.closed()
    await asyncio.sleep(0)
    assert trim.calls == []  # under the threshold: nothing
    for _ in range(5):  # the threshold, then more of the same wave
        releaser.closed()
    await asyncio.wait_for(trim.called.wait(), DEADLINE)
    assert trim.calls == [(0, False)]  # malloc_trim(0), not on the event loop's thread


async def test_a_wave_that_goes_on_during_a_trim_is_trimmed_again() -> None:
    """Closes that reach the threshold again after a trim bring a second trim."""
    trim = FakeTrim(asyncio.get_running_loop())
    releaser = MemoryReleaser(threshold=2, delay=0, trim=trim)
    releaser.closed()
    releaser.closed()
    await asyncio.wait_for(trim.called.wait(), DEADLINE)
    trim.called.clear()
    releaser.closed()
    releaser.closed()  # the threshold again: a second trim follows
    await asyncio.wait_for(trim.called.wait(), DEADLINE)
    assert len(trim.calls) == 2


async def test_closes_count_against_what_is_still_open() -> None:
    """Closes trigger a release only once they are at least as many as the connections still open."""
    trim = FakeTrim(asyncio.get_running_loop())
    releaser = MemoryReleaser(threshold=2, delay=0, trim=trim)
    for _ in range(10):
        releaser.opened()
    for _ in range(4):
        releaser.closed()  # 4 closed, 6 still open: not worth a full collection yet
    await asyncio.sleep(0)
    assert trim.calls == []
    releaser.closed()  # 5 closed, 5 open
    await asyncio.wait_for(trim.called.wait(), DEADLINE)
    assert len(trim.calls) == 1


async def test_the_release_collects_cyclic_garbage_even_without_malloc_trim() -> None:
    """A release collects cyclic garbage even where there is no ``malloc_trim``."""
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # as with core.gc_tuning's thresholds: no collection would come by itself
    try:
        garbage = Cycle()
        alive = weakref_to(garbage)
        del garbage
        releaser = MemoryReleaser(threshold=1, delay=0, trim=None)
        releaser.closed()
        for _ in range(3):
            await asyncio.sleep(0)
        assert releaser.releases == 1
        assert alive() is None
    finally:
        gc.enable()


def weakref_to(value: object) -> weakref.ref[object]:
    return weakref.ref(value)


def test_glibc_malloc_trim_is_found_and_runs() -> None:
    """glibc's ``malloc_trim`` is found and can be called."""
    assert malloc_trim is not None  # this project's images and CI are glibc Linux
    assert malloc_trim(0) in (0, 1)


async def test_closed_websockets_reach_the_views_releaser(server: Server) -> None:
    """Closed websocket connections are counted by the GraphQL view's releaser."""
    (view,) = [r.endpoint for r in server.app.routes if isinstance(r, WebSocketRoute)]
    assert isinstance(view, GraphQLView)
    trim = FakeTrim(asyncio.get_running_loop())
    view.memory = MemoryReleaser(threshold=2, delay=0, trim=trim)
    for _ in range(2):
        async with server.ws(ALICE):
            pass
    await asyncio.wait_for(trim.called.wait(), DEADLINE)
    assert trim.calls == [(0, False)]
