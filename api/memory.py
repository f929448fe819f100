"""Gives the memory of closed websockets back to the system once many of them have closed.

A closed subscription leaves cyclic garbage (tasks, frames, protocol objects referring to each
other) that only a full collection frees, and with ``core.gc_tuning``'s thresholds a full
collection is rare: after many subscriptions came and went, RSS stayed at its peak
(bench/README.md, fig. 7). Even once freed, glibc's allocator keeps the pages; ``malloc_trim(0)``
hands them back.

So after a wave of closes (at least ``threshold``, and at least as many as are still open:
the memory to reclaim is then worth a pause proportional to what is live), ``delay`` seconds
later, one ``gc.collect()`` runs on the loop, then ``malloc_trim(0)`` in a worker thread (it
walks the heap; ctypes releases the GIL). Steady churn costs one collection per "as many closes
as are open". Without glibc (musl, macOS) there is no ``malloc_trim``; the collection still runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable

import structlog

__all__ = ["MemoryReleaser", "malloc_trim"]

log = structlog.get_logger("jobpulse.memory")

Trim = Callable[[int], int]


def _load_malloc_trim() -> Trim | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


#: glibc's ``malloc_trim``, or ``None`` where the C library has none
malloc_trim: Trim | None = _load_malloc_trim()


class MemoryReleaser:
    """Counts websockets opened and closed; after a wave of closes, collects and trims the heap."""

    def __init__(self, threshold: int = 256, delay: float = 1.0, trim: Trim | None = malloc_trim) -> None:
        self.threshold = threshold
        self.delay = delay
        self._trim = trim
        self._open = 0
        self._closed = 0  # since the last collection
        self._scheduled = False
        #: collections (each followed by a trim where there is one) done so far
        self.releases = 0

    def opened(self) -> None:
        """One websocket accepted."""
        self._open += 1

    def closed(self) -> None:
        """One websocket done."""
        self._open = max(0, self._open - 1)
        self._closed += 1
        self._schedule_if_due()

    def _schedule_if_due(self) -> None:
        if not self._scheduled and self._closed >= max(self.threshold, self._open):
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.delay, self._release)

    def _release(self) -> None:
        self._closed = 0  # the closes from here on count towards the next release
        gc.collect()
        if self._trim is None:
            self._done(None)
            return
        future = asyncio.get_running_loop().run_in_executor(None, self._trim, 0)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[int] | None) -> None:
        self._scheduled = False
        self.releases += 1
        if future is not None and not future.cancelled() and future.exception() is not None:
            log.warning("malloc_trim failed", error=repr(future.exception()))
        self._schedule_if_due()  # a wave still going on: release again after it
