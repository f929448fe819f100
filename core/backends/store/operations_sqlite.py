"""``SqliteOperationsStore``: workers, per-minute stats and retention in the embedded database.

Tables ``workers`` and ``stats_minutes`` (DDL in ``sqlite_db.SCHEMA``). Stats rows are merged on
the writer thread (read, add, write in one op), so concurrent flushes add up. Retention deletes
in batches of ``limit`` jobs per write op, each op a few milliseconds of the writer's time, so
submits queued behind it wait no longer than that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from core.backends.codec import dumps, loads
from core.backends.sqlite_db import SqliteDatabase
from core.backends.store.operations_codec import (
    stats_from_dict,
    stats_to_dict,
    worker_from_dict,
    worker_to_dict,
)
from core.cursors import to_micros
from core.operations import MinuteStats, WorkerRecord, minute_of

__all__ = ["SqliteOperationsStore"]

_UPSERT_WORKER = (
    "INSERT INTO workers (id, last_seen_us, lost_alerted, doc) VALUES (?, ?, 0, ?)"
    " ON CONFLICT (id) DO UPDATE SET last_seen_us = excluded.last_seen_us, lost_alerted = 0,"
    " doc = excluded.doc"
)
_UPSERT_STATS = (
    "INSERT INTO stats_minutes (minute, type, doc) VALUES (?, ?, ?)"
    " ON CONFLICT (minute, type) DO UPDATE SET doc = excluded.doc"
)


class SqliteOperationsStore:
    """See the module docstring."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def save_worker(self, worker: WorkerRecord) -> None:
        row = (worker.id, to_micros(worker.last_seen_at), dumps(worker_to_dict(worker)))
        await self.db.write(lambda conn: conn.execute(_UPSERT_WORKER, row))

    async def remove_worker(self, worker_id: str) -> None:
        await self.db.write(lambda conn: conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,)))

    async def list_workers(self, seen_after: datetime) -> list[WorkerRecord]:
        since = to_micros(seen_after)

        def op(conn: sqlite3.Connection) -> list[WorkerRecord]:
            rows = conn.execute(
                "SELECT doc, lost_alerted FROM workers WHERE last_seen_us > ?", (since,)
            ).fetchall()
            workers = [
                worker_from_dict({**loads(doc), "lost_alerted": bool(alerted)}) for doc, alerted in rows
            ]
            return sorted(workers, key=lambda w: (w.started_at, w.id))

        return await self.db.read(op)

    async def claim_lost_alert(self, worker_id: str, seen_before: datetime) -> bool:
        before = to_micros(seen_before)

        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE workers SET lost_alerted = 1 WHERE id = ? AND lost_alerted = 0 AND last_seen_us < ?",
                (worker_id, before),
            )
            return cursor.rowcount == 1

        return await self.db.write(op)

    async def add_stats(self, rows: Sequence[MinuteStats]) -> None:
        if not rows:
            return
        docs = [row.copy() for row in rows]

        def op(conn: sqlite3.Connection) -> None:
            for row in docs:
                stored = conn.execute(
                    "SELECT doc FROM stats_minutes WHERE minute = ? AND type = ?", (row.minute, row.type)
                ).fetchone()
                merged = row if stored is None else stats_from_dict(loads(stored[0]))
                if stored is not None:
                    merged.add(row)
                conn.execute(_UPSERT_STATS, (row.minute, row.type, dumps(stats_to_dict(merged))))

        await self.db.write(op)

    async def list_stats(self, since_minute: int, type: str | None) -> list[MinuteStats]:
        def op(conn: sqlite3.Connection) -> list[MinuteStats]:
            if type is None:
                rows = conn.execute(
                    "SELECT doc FROM stats_minutes WHERE minute >= ? ORDER BY minute", (since_minute,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM stats_minutes WHERE minute >= ? AND type = ? ORDER BY minute",
                    (since_minute, type),
                ).fetchall()
            return [stats_from_dict(loads(doc)) for (doc,) in rows]

        return await self.db.read(op)

    async def delete_expired(self, before: datetime, limit: int) -> int:
        before_us = to_micros(before)
        before_minute = minute_of(before)

        def op(conn: sqlite3.Connection) -> int:
            ids = [
                job_id
                for (job_id,) in conn.execute(
                    "SELECT id FROM jobs WHERE completed_us < ? ORDER BY completed_us LIMIT ?",
                    (before_us, limit),
                )
            ]
            if ids:
                marks = ", ".join("?" * len(ids))
                conn.execute(f"DELETE FROM events WHERE job_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM queue WHERE job_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
            conn.execute("DELETE FROM stats_minutes WHERE minute < ?", (before_minute,))
            conn.execute("DELETE FROM workers WHERE last_seen_us < ?", (before_us,))
            return len(ids)

        return await self.db.write(op)
