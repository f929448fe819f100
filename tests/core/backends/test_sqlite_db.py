"""The embedded database's group-committing writer thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from core.backends.sqlite_db import SqliteDatabase


async def test_a_batch_of_writes_wakes_the_loop_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All the writes committed in one batch are answered with a single ``call_soon_threadsafe``."""
    db = SqliteDatabase(tmp_path / "batch.sqlite3")
    loop = asyncio.get_running_loop()
    wakeups = 0
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> Any:
        nonlocal wakeups
        wakeups += 1
        return call_soon_threadsafe(callback, *args)

    started, gate = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)  # holds the writer so the next writes queue up into one batch

    def write(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT 1").fetchone()[0])

    try:
        first = asyncio.create_task(db.write(blocker))
        # The writer is inside the blocker's batch before the others are queued, however slowly
        # its thread was scheduled: the blocker is a batch of its own.
        assert await asyncio.to_thread(started.wait, 10)
        monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
        batch = [asyncio.create_task(db.write(write)) for _ in range(50)]
        # Callbacks run in order: every write's first step (which queues its op) runs before this.
        loop.call_soon(gate.set)
        results = await asyncio.gather(first, *batch)
        answered_with = wakeups  # the blocker's batch and the fifty's (not closing's own)
    finally:
        await db.close()

    assert (results[1:], answered_with) == ([1] * 50, 2)
