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

    gate = threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        gate.wait(10)  # holds the writer so the next writes queue up into one batch

    def write(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT 1").fetchone()[0])

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    try:
        first = asyncio.create_task(db.write(blocker))
        batch = [asyncio.create_task(db.write(write)) for _ in range(50)]
        # Callbacks run in order: every write's first step (which queues its op) runs before this.
        loop.call_soon(gate.set)
        results = await asyncio.gather(first, *batch)
    finally:
        await db.close()

    assert (results[1:], wakeups) == ([1] * 50, 2)
