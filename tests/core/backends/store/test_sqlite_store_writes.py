"""The embedded store writes a submitted job's row once, with ``enqueued_at`` already set."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.backends.queue.sqlite import SqliteJobQueue
from core.backends.sqlite_db import SqliteDatabase
from core.backends.store.sqlite import SqliteJobStore
from core.models import Job, JobEvent, JobEventKind, new_job_id


async def test_submit_inserts_the_job_row_once_with_enqueued_at(tmp_path: Path) -> None:
    """Inserting a PENDING job is one INSERT into ``jobs`` (no UPDATE after it), already marked enqueued."""
    db = SqliteDatabase(tmp_path / "writes.sqlite3")
    store = SqliteJobStore(db, queue=SqliteJobQueue(db))
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


async def test_insert_many_enqueues_the_new_jobs_in_one_write(tmp_path: Path) -> None:
    """A batch is one write op (one savepoint); each new job is written once with ``enqueued_at``
    set and gets its queue row, visible at its ``run_at`` if it has one; a duplicate gets none."""
    db = SqliteDatabase(tmp_path / "writes.sqlite3")
    queue = SqliteJobQueue(db)
    store = SqliteJobStore(db, queue=queue)
    statements: list[str] = []

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)

    now = datetime.now(UTC)
    jobs = [
        Job(id=new_job_id(), type="noop", owner="alice", payload={"n": n}, created_at=now, updated_at=now)
        for n in range(4)
    ]
    jobs[1] = replace(jobs[1], priority=5)
    jobs[2] = replace(jobs[2], run_at=now + timedelta(hours=1))
    jobs[3] = replace(jobs[3], idempotency_key="k")
    again = replace(jobs[3], id=new_job_id())
    items = [(j, JobEvent.of(j, JobEventKind.CREATED, "submitted")) for j in [*jobs, again]]
    try:
        await db.write(trace)
        statements.clear()
        answers = await store.insert_many(items, now - timedelta(days=1))
        savepoints = [s for s in statements if s.startswith("SAVEPOINT")]
        stored = await store.get_many([j.id for j in jobs])
        events = await store.list_events(after=None, limit=10)
        ready = await queue.receive(["noop"], 10, 0, 30)
        depth = (await queue.depths(["noop"]))["noop"]
    finally:
        await db.close()

    written = [replace(j, enqueued_at=now) for j in jobs]
    assert answers == [*[(w, True) for w in written], (written[3], False)]
    assert len(savepoints) == 1
    assert stored == {w.id: w for w in written}
    # The events are stored as given: the job as the service made it, before the store enqueued it.
    assert events == sorted((e for _, e in items[:4]), key=lambda e: e.job_id)
    assert [d.job_id for d in ready] == [jobs[1].id, jobs[0].id, jobs[3].id]
    assert depth.delayed == 1


async def test_insert_many_writes_what_insert_writes(tmp_path: Path) -> None:
    """Rows written by ``insert_many`` and by ``insert`` for equal jobs are byte for byte the same."""
    db = SqliteDatabase(tmp_path / "same.sqlite3")
    store = SqliteJobStore(db, queue=SqliteJobQueue(db))
    now = datetime.now(UTC)
    one = Job(
        id=new_job_id(),
        type="noop",
        owner="alice",
        payload={"x": [1, "é"]},
        created_at=now,
        updated_at=now,
        run_at=now + timedelta(seconds=5),
        priority=-3,
        idempotency_key="k1",
    )
    many = replace(one, id=new_job_id(), idempotency_key="k2")

    def rows(conn: sqlite3.Connection, job_id: str) -> list[tuple[object, ...]]:
        found = [
            conn.execute(f"SELECT * FROM {table} WHERE {column} = ?", (job_id,)).fetchall()
            for table, column in (("jobs", "id"), ("events", "job_id"), ("queue", "job_id"))
        ]
        text = repr(found).replace(job_id, "ID").replace(job_id.encode().hex(), "ID")
        return [
            text.replace('"k1"', '"K"').replace('"k2"', '"K"').replace("'k1'", "'K'").replace("'k2'", "'K'")
        ]

    try:
        since = now - timedelta(days=1)
        await store.insert(one, JobEvent.of(one, JobEventKind.CREATED, "submitted"), since)
        await store.insert_many([(many, JobEvent.of(many, JobEventKind.CREATED, "submitted"))], since)
        single, bulk = (
            await db.read(lambda conn: rows(conn, one.id)),
            await db.read(lambda conn: rows(conn, many.id)),
        )
    finally:
        await db.close()
    assert "'PENDING'" in single[0] and "'CREATED'" in single[0] and single == bulk
