"""The embedded store writes a submitted job's row once, with ``enqueued_at`` already set."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.backends.sqlite import SqliteJobStore
from core.backends.sqlite_db import SqliteDatabase
from core.models import Job, JobEvent, JobEventKind, new_job_id


async def test_submit_inserts_the_job_row_once_with_enqueued_at(tmp_path: Path) -> None:
    """Inserting a PENDING job is one INSERT into ``jobs`` (no UPDATE after it), already marked enqueued."""
    db = SqliteDatabase(tmp_path / "writes.sqlite3")
    store = SqliteJobStore(db)
    statements: list[str] = []

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)  # the writer thread's one connection

    job = Job(id=new_job_id(), type="noop", owner="alice", payload={})
    event = JobEvent(
        job_id=job.id, version=job.version, kind=JobEventKind.CREATED, at=job.created_at, job=job
    )
    try:
        await db.write(trace)
        written, created = await store.insert(job, event, datetime.now(UTC) - timedelta(days=1))
        stored = await store.get(job.id)
    finally:
        await db.close()

    job_writes = [s.split()[0] for s in statements if " jobs " in f"{s} " and not s.startswith("SELECT")]
    assert (created, written.enqueued_at, stored, job_writes) == (True, job.updated_at, written, ["INSERT"])
