"""``SqliteControlStore``: flow control in the embedded database, held by the claim's own transaction.

The store calls ``gate`` (``SqliteJobStore.claim_gate``) in the transaction that writes a claim,
before the write: it counts the type's running jobs (PROCESSING under a live lease) and those of
the job's ``concurrency_key``, looks for an earlier PENDING job of the same key (priority, then
submit order), and takes a rate token from ``type_starts`` (a moving window). Any of them refused,
it raises ``HeldError`` and the claim writes nothing (DESIGN.md §8). A running job's slot is its
own lease: a dead worker's slot ends with it, and nothing is ever decremented.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from core.backends.codec import dumps, loads
from core.backends.sqlite_db import SqliteDatabase
from core.backends.store.sqlite import SqliteJobStore
from core.cursors import to_micros
from core.flow_control import HeldError, HoldReason, Overrides, RateLimit, TypeLimits, apply_overrides
from core.models import Job, JobId

__all__ = ["HOLD_SECONDS", "SqliteControlStore"]

#: how long a message held by a pause or a concurrency limit stays hidden before it is tried again
HOLD_SECONDS = 1.0

_KEY = "json_extract(CAST(doc AS TEXT), '$.concurrency_key')"
_LEASE = "json_extract(CAST(doc AS TEXT), '$.lease_until')"
_PRIORITY = "json_extract(CAST(doc AS TEXT), '$.priority')"
_ATTEMPTS = "SELECT json_extract(CAST(doc AS TEXT), '$.attempts') FROM jobs WHERE id = ?"
_RUNNING = f"SELECT COUNT(*) FROM jobs WHERE type = ? AND status = 'PROCESSING' AND id != ? AND {_LEASE} > ?"
_RUNNING_KEY = (
    f"SELECT COUNT(*) FROM jobs WHERE type = ? AND {_KEY} = ? AND status = 'PROCESSING' AND id != ?"
    f" AND {_LEASE} > ?"
)
_AHEAD = (
    f"SELECT 1 FROM jobs WHERE type = ? AND {_KEY} = ? AND status = 'PENDING' AND id != ?"
    f" AND (run_us IS NULL OR run_us <= ?) AND ({_PRIORITY} > ? OR ({_PRIORITY} = ?"
    " AND (created_us < ? OR (created_us = ? AND id < ?)))) LIMIT 1"
)


def _read(conn: sqlite3.Connection, type: str) -> Overrides | None:
    row = conn.execute("SELECT doc FROM job_type_controls WHERE type = ?", (type,)).fetchone()
    return None if row is None else dict(loads(row[0]))


def _starts_since(conn: sqlite3.Connection, type: str, since: int) -> tuple[int, int | None]:
    """How many starts ``type`` made after ``since`` (µs), and the oldest of them."""
    count, oldest = conn.execute(
        "SELECT COUNT(*), MIN(at_us) FROM type_starts WHERE type = ? AND at_us > ?", (type, since)
    ).fetchone()
    return int(count), oldest


class SqliteControlStore:
    """Control records in ``job_type_controls``; installs its gate on ``store``."""

    in_claim = True

    def __init__(self, store: SqliteJobStore, declared: Callable[[str], TypeLimits]) -> None:
        self.db: SqliteDatabase = store.db
        self.declared = declared
        store.claim_gate = self.gate

    async def read_overrides(self) -> dict[str, Overrides]:
        def op(conn: sqlite3.Connection) -> dict[str, Overrides]:
            rows = conn.execute("SELECT type, doc FROM job_type_controls").fetchall()
            return {type_: dict(loads(doc)) for type_, doc in rows}

        return await self.db.read(op)

    async def write_overrides(self, type: str, changes: Overrides) -> Overrides:
        def op(conn: sqlite3.Connection) -> Overrides:
            merged = {**(_read(conn, type) or {}), **changes}
            conn.execute(
                "INSERT INTO job_type_controls (type, doc) VALUES (?, ?)"
                " ON CONFLICT (type) DO UPDATE SET doc = excluded.doc",
                (type, dumps(merged)),
            )
            return merged

        return await self.db.write(op)

    async def take(self, job: Job, limits: TypeLimits, lease_until: datetime, now: datetime) -> float | None:
        """Taken by ``gate``, in the claim's transaction."""
        return None

    async def extend(self, job_id: JobId, lease_until: datetime) -> None:
        """A slot is the job's own lease."""

    async def give_back(self, job_id: JobId) -> None:
        """A slot is the job's own lease."""

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def running(self, type: str, key: str | None, now: datetime) -> int:
        now_us = to_micros(now)

        def op(conn: sqlite3.Connection) -> int:
            if key is None:
                row = conn.execute(_RUNNING, (type, "", now_us)).fetchone()
            else:
                row = conn.execute(_RUNNING_KEY, (type, key, "", now_us)).fetchone()
            return int(row[0])

        return await self.db.read(op)

    async def rate_spent(self, type: str, rate: RateLimit, now: datetime) -> bool:
        since = to_micros(now) - int(rate.period_seconds * 1e6)

        def op(conn: sqlite3.Connection) -> bool:
            count, _oldest = _starts_since(conn, type, since)
            return count >= rate.limit

        return await self.db.read(op)

    def gate(self, conn: sqlite3.Connection, claimed: Job) -> None:
        """Raise ``HeldError`` unless the claim that writes ``claimed`` may start now (writer thread)."""
        limits = apply_overrides(self.declared(claimed.type), _read(conn, claimed.type))
        if not limits.limits(claimed):
            return
        stored = conn.execute(_ATTEMPTS, (claimed.id,)).fetchone()
        if stored is None or stored[0] != claimed.attempts - 1:
            return  # not a claim (a heartbeat in the claim's microsecond)
        if limits.paused:
            raise HeldError(HoldReason.PAUSED, HOLD_SECONDS, f"job type {claimed.type} is paused")
        now_us = to_micros(claimed.updated_at)
        if limits.concurrency is not None:
            (running,) = conn.execute(_RUNNING, (claimed.type, claimed.id, now_us)).fetchone()
            if running >= limits.concurrency:
                raise HeldError(HoldReason.CONCURRENCY, HOLD_SECONDS)
        key = claimed.concurrency_key
        if key is not None:
            (running,) = conn.execute(_RUNNING_KEY, (claimed.type, key, claimed.id, now_us)).fetchone()
            if running >= limits.concurrency_per_key:
                raise HeldError(HoldReason.KEY, HOLD_SECONDS)
            created = to_micros(claimed.created_at)
            priority = claimed.priority
            params = (claimed.type, key, claimed.id, now_us, priority, priority, created, created, claimed.id)
            ahead = conn.execute(_AHEAD, params).fetchone()
            if ahead is not None:
                raise HeldError(HoldReason.KEY, HOLD_SECONDS / 4, "an earlier job of its key goes first")
        rate = limits.rate_limit
        if rate is not None:
            self._take_token(conn, claimed.type, rate.limit, rate.period_seconds, now_us)

    @staticmethod
    def _take_token(conn: sqlite3.Connection, type: str, limit: int, period: float, now_us: int) -> None:
        """One start in the moving window of ``period`` seconds, or ``HeldError`` until one is free."""
        since = now_us - int(period * 1e6)
        conn.execute("DELETE FROM type_starts WHERE type = ? AND at_us <= ?", (type, since))
        count, oldest = _starts_since(conn, type, since)
        if count >= limit:
            assert oldest is not None  # a full window has a first start
            raise HeldError(HoldReason.RATE, (oldest - since) / 1e6 + 0.001)
        conn.execute("INSERT INTO type_starts (type, at_us) VALUES (?, ?)", (type, now_us))
