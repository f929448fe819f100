"""The embedded store's in-transaction enqueue wakes a receive waiting on the embedded queue."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backends.queue import sqlite as sqlite_queue
from core.backends.queue.sqlite import SqliteJobQueue
from core.backends.sqlite_db import SqliteDatabase
from core.backends.store.sqlite import SqliteJobStore
from core.models import Job, JobEvent, JobEventKind, new_job_id


async def test_submit_wakes_a_receive_already_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receive already waiting returns a job the store enqueues afterwards, long before its poll."""
    monkeypatch.setattr(sqlite_queue, "POLL_SECONDS", 30.0)
    db = SqliteDatabase(tmp_path / "wake.sqlite3")
    queue = SqliteJobQueue(db)
    store = SqliteJobStore(db, queue=queue)
    waiting = asyncio.Event()
    read = db.read

    async def read_then_flag(op: Callable[[sqlite3.Connection], Any]) -> Any:
        # The receive reads only after its first (empty) take, just before it starts waiting.
        result = await read(op)
        waiting.set()
        return result

    monkeypatch.setattr(db, "read", read_then_flag)
    try:
        receiving = asyncio.create_task(queue.receive(["noop"], 1, 20, 60))
        await asyncio.wait_for(waiting.wait(), 2)
        job = Job(id=new_job_id(), type="noop", owner="alice", payload={})
        event = JobEvent(
            job_id=job.id, version=job.version, kind=JobEventKind.CREATED, at=job.created_at, job=job
        )
        started = time.monotonic()
        await store.insert(job, event, datetime.now(UTC) - timedelta(days=1))

        deliveries = await asyncio.wait_for(receiving, 2)
    finally:
        await db.close()

    assert [d.job_id for d in deliveries] == [job.id]
    assert time.monotonic() - started < 2
