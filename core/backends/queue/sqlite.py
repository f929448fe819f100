"""``SqliteJobQueue``: the embedded queue, one table in the embedded database.

One row per job (a duplicate send collapses onto it), strict priority then FIFO within a type,
visibility timeouts like SQS (a received row is hidden until acked, released or timed out, so a
crashed worker's job is delivered again), and dead letters kept as flagged rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from core.backends.codec import loads
from core.backends.sqlite_db import SqliteDatabase, ack_in, enqueue_in
from core.cursors import to_micros
from core.models import Job, JobId, utcnow
from core.ports import Delivery, QueueDepth

__all__ = ["SqliteJobQueue"]

T = TypeVar("T")

# Another process may write the same file (``jobpulse api`` + ``jobpulse worker``); its sends
# cannot wake us, so an idle receive looks again at least this often.
POLL_SECONDS = 0.25


def _now_us() -> int:
    return time.time_ns() // 1000


def _nothing(conn: sqlite3.Connection, delivery: Delivery) -> None:
    """``take_then``'s step for a plain receive."""


class SqliteJobQueue:
    """Queue rows in the embedded database; receive long-polls like SQS."""

    max_delay_seconds = float("inf")

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._changed = asyncio.Event()
        # The store enqueues inside its own transactions (submit, retry): wake receivers then too.
        db.on_queue_change(self._wake)

    def _wake(self) -> None:
        # Waiters hold the old event, which stays set; new waiters get a fresh one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def ping(self) -> None:
        await self.db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """The database is closed by whoever opened it (it is shared with the store)."""

    async def ensure_queues(self, types: Sequence[str]) -> None:
        """Nothing to create: every type's rows share one table."""

    async def send(self, job: Job, delay_seconds: float = 0.0) -> None:
        visible = _now_us() + int(delay_seconds * 1e6)
        await self.db.write(lambda conn: enqueue_in(conn, job, visible))
        self._wake()

    async def receive(
        self, types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        taken = await self.take_then(types, max_messages, wait_seconds, visibility_seconds, _nothing)
        return [delivery for delivery, _ in taken]

    async def take_then(
        self,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        visibility_seconds: float,
        then: Callable[[sqlite3.Connection, Delivery], T],
    ) -> list[tuple[Delivery, T]]:
        """``receive``, and ``then(conn, delivery)`` for each message taken, in the
        transaction that takes it (the store claims the job there: ``SqliteJobStore.receive_and_decide``).

        Cancelled while the take is being committed, it answers with what it took instead: the take
        commits anyway, and what it hid (and claimed) must reach a caller that can run or give it back.
        """
        deadline = time.monotonic() + wait_seconds
        if not types:
            return []
        placeholders = ", ".join("?" * len(types))

        def take(conn: sqlite3.Connection) -> list[tuple[Delivery, T]]:
            now = _now_us()
            rows = conn.execute(
                f"SELECT job_id, type, receive_count FROM queue WHERE type IN ({placeholders}) AND dead = 0"
                " AND visible_us <= ? ORDER BY priority DESC, seq LIMIT ?",
                (*types, now, max_messages),
            ).fetchall()
            taken = []
            for job_id, type_, count in rows:
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE queue SET receipt = ?, visible_us = ?, receive_count = receive_count + 1"
                    " WHERE job_id = ?",
                    (receipt, now + int(visibility_seconds * 1e6), job_id),
                )
                delivery = Delivery(job_id, type_, receipt, count + 1)
                taken.append((delivery, then(conn, delivery)))
            return taken

        def next_visible(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                f"SELECT MIN(visible_us) FROM queue WHERE type IN ({placeholders}) AND dead = 0", tuple(types)
            ).fetchone()
            return None if row is None else row[0]

        while True:
            changed = self._changed
            write = asyncio.ensure_future(self.db.write(take))
            try:
                taken = await asyncio.shield(write)
            except asyncio.CancelledError:
                taken = await write
                if not taken:
                    raise
                return taken
            remaining = deadline - time.monotonic()
            if taken or remaining <= 0:
                return taken
            upcoming = await self.db.read(next_visible)
            pause = min(remaining, POLL_SECONDS)
            if upcoming is not None:
                pause = min(pause, max(0.0, (upcoming - _now_us()) / 1e6))
            try:
                await asyncio.wait_for(changed.wait(), pause)
            except TimeoutError:
                pass

    async def ack(self, delivery: Delivery) -> None:
        await self.db.write(lambda conn: ack_in(conn, delivery))

    async def release(self, delivery: Delivery, delay_seconds: float) -> None:
        """Visible again after the delay; if the row went missing, put one back (never lose a job)."""
        visible = _now_us() + int(delay_seconds * 1e6)

        def op(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE queue SET visible_us = ?, receipt = NULL"
                " WHERE job_id = ? AND (receipt = ? OR receipt IS NULL)",
                (visible, delivery.job_id, delivery.receipt),
            )
            if cursor.rowcount == 0:
                row = conn.execute(
                    "SELECT created_us, doc FROM jobs WHERE id = ?", (delivery.job_id,)
                ).fetchone()
                seq, priority = (row[0], loads(row[1])["priority"]) if row else (_now_us(), 0)
                conn.execute(
                    "INSERT INTO queue (job_id, type, priority, seq, visible_us) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (job_id) DO NOTHING",
                    (delivery.job_id, delivery.type, priority, seq, visible),
                )

        await self.db.write(op)
        self._wake()

    async def extend(self, delivery: Delivery, visibility_seconds: float) -> None:
        visible = _now_us() + int(visibility_seconds * 1e6)
        await self.db.write(
            lambda conn: conn.execute(
                "UPDATE queue SET visible_us = ? WHERE job_id = ? AND receipt = ?",
                (visible, delivery.job_id, delivery.receipt),
            )
        )

    async def dead_letter(self, delivery: Delivery) -> None:
        await self.db.write(
            lambda conn: conn.execute(
                "UPDATE queue SET dead = 1, receipt = NULL WHERE job_id = ?", (delivery.job_id,)
            )
        )

    async def redrive_dead_letters(self, type: str) -> list[JobId]:
        def op(conn: sqlite3.Connection) -> list[JobId]:
            ids = [
                r[0] for r in conn.execute("SELECT job_id FROM queue WHERE type = ? AND dead = 1", (type,))
            ]
            conn.execute("DELETE FROM queue WHERE type = ? AND dead = 1", (type,))
            return ids

        return await self.db.write(op)

    async def depths(self, types: Sequence[str]) -> dict[str, QueueDepth]:
        now = to_micros(utcnow())

        def op(conn: sqlite3.Connection) -> dict[str, QueueDepth]:
            depths = {t: QueueDepth() for t in types}
            for type_, ready, in_flight, delayed, dead, oldest in conn.execute(
                "SELECT type,"
                " SUM(dead = 0 AND visible_us <= ?),"
                " SUM(dead = 0 AND visible_us > ? AND receipt IS NOT NULL),"
                " SUM(dead = 0 AND visible_us > ? AND receipt IS NULL),"
                " SUM(dead = 1),"
                # The oldest ready row: how long it has been receivable (its delay not counted).
                " MIN(CASE WHEN dead = 0 AND visible_us <= ? THEN visible_us END)"
                " FROM queue GROUP BY type",
                (now, now, now, now),
            ):
                age = 0.0 if oldest is None else max(0.0, (now - oldest) / 1e6)
                depths[type_] = QueueDepth(ready or 0, in_flight or 0, delayed or 0, dead or 0, age)
            return depths

        return await self.db.read(op)
