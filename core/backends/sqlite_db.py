"""One SQLite file shared by the embedded store and queue, with a group-committing writer.

Why not aiosqlite: it runs one statement per thread hop and one transaction per call, so every
acknowledged write costs its own fsync. Here a single writer thread drains whatever writes are
waiting into one transaction (each in its own savepoint, so one failing write does not undo the
others) and commits them with one fsync: durable (WAL, ``synchronous=FULL``) and still fast
under concurrency. Reads run on a small thread pool with their own connections (WAL readers
never block the writer).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from core.backends.codec import micros
from core.errors import BackendUnavailableError
from core.models import Job
from core.ports import Delivery

__all__ = ["ENQUEUE", "SqliteDatabase", "ack_in", "enqueue_in", "queue_row", "visible_us"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

MAX_BATCH = 512
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    run_us INTEGER,
    enqueued_us INTEGER,
    started_us INTEGER,
    completed_us INTEGER,
    idempotency_key TEXT,
    doc BLOB NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_owner_status ON jobs (owner, status, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_type_status ON jobs (type, status, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_idempotency ON jobs (owner, idempotency_key, created_us)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_unenqueued ON jobs (updated_us)
    WHERE status = 'PENDING' AND enqueued_us IS NULL;

CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (job_id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_cursor ON events (at_us, job_id, version);
CREATE INDEX IF NOT EXISTS events_owner ON events (owner, at_us, job_id, version);
CREATE INDEX IF NOT EXISTS events_type ON events (type, at_us, job_id, version);

CREATE TABLE IF NOT EXISTS queue (
    job_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    priority INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    visible_us INTEGER NOT NULL,
    receipt TEXT,
    receive_count INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (type, dead, priority DESC, seq);

-- Operations (core/backends/store/operations_sqlite.py): retention, workers, stats per minute.
CREATE INDEX IF NOT EXISTS jobs_completed ON jobs (completed_us) WHERE completed_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    last_seen_us INTEGER NOT NULL,
    lost_alerted INTEGER NOT NULL DEFAULT 0,
    doc BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stats_minutes (
    minute INTEGER NOT NULL,
    type TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (minute, type)
) WITHOUT ROWID;
-- Workflows (core/backends/store/flows_sqlite.py): who depends on whom, and flow records.
CREATE TABLE IF NOT EXISTS job_dependencies (
    depends_on TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs (updated_us) WHERE status = 'WAITING';
-- expiresInSeconds: PENDING jobs that have an expiry, soonest first (the sweeper's list).
CREATE INDEX IF NOT EXISTS jobs_expiring ON jobs (json_extract(CAST(doc AS TEXT), '$.expires_at'))
    WHERE status = 'PENDING' AND json_extract(CAST(doc AS TEXT), '$.expires_at') IS NOT NULL;
CREATE TABLE IF NOT EXISTS flows (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    state TEXT NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_owner ON flows (owner, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS flows_created ON flows (created_us DESC, id DESC);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    paused INTEGER NOT NULL,
    next_run_us INTEGER,
    version INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    doc BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS schedules_name ON schedules (owner, name);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_run_us) WHERE paused = 0;
CREATE INDEX IF NOT EXISTS schedules_created ON schedules (created_us, id);
CREATE INDEX IF NOT EXISTS schedules_owner ON schedules (owner, created_us, id);
CREATE TABLE IF NOT EXISTS job_type_controls (
    type TEXT PRIMARY KEY,
    doc BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS type_starts (
    type TEXT NOT NULL,
    at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS type_starts_at ON type_starts (type, at_us);
CREATE INDEX IF NOT EXISTS jobs_concurrency_key
    ON jobs (type, json_extract(CAST(doc AS TEXT), '$.concurrency_key'), status);
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged write survives power loss, not just a process crash (DESIGN.md §1).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


class SqliteDatabase:
    """The embedded database: ``await db.write(fn)`` and ``await db.read(fn)``, ``fn(conn)`` sync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            setup = _connect(path)
            setup.executescript(SCHEMA)
            setup.close()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot open SQLite database {path}: {exc}") from exc
        self._ops: queue.SimpleQueue[tuple[Op, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._run_writer, name="jobpulse-sqlite-writer", daemon=True)
        self._writer.start()
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jobpulse-sqlite-reader")
        self._closed = False
        # "Queue changed": set by an op on the writer thread (``queue_changed``), fired after COMMIT.
        self._queue_flag = False
        self._queue_listeners: list[Callable[[], None]] = []

    def on_queue_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every commit in which an op enqueued (the queue's wake-up).

        It runs on the event loop of the write that enqueued, after that write's caller is answered.
        """
        self._queue_listeners.append(listener)

    def queue_changed(self) -> None:
        """Called by an op (on the writer thread) that made a queue row receivable."""
        self._queue_flag = True

    async def write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` inside the next group transaction; returns once it is durably committed."""
        if self._closed:
            raise BackendUnavailableError("the SQLite database is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._ops.put((op, future))
        return await future

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on a reader connection (it sees everything committed before it starts)."""
        if self._closed:
            raise BackendUnavailableError("the SQLite database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, op)

    def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        try:
            return op(conn)
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"SQLite read failed: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ops.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        self._readers.shutdown(wait=True)

    # -- the writer thread -----------------------------------------------------------------
    def _run_writer(self) -> None:
        conn = _connect(self.path)
        stopping = False
        while not stopping:
            first = self._ops.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._ops.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            results, wake = self._commit(conn, batch)
            # One wake-up per event loop for the whole batch, not one per op: each
            # call_soon_threadsafe writes to the loop's self-pipe, a system call per op otherwise.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
            for loop, settled in by_loop.items():
                listeners = self._queue_listeners if loop in wake else []
                try:
                    loop.call_soon_threadsafe(_settle_all, settled, listeners)
                except RuntimeError:
                    pass  # the caller's event loop is gone (shutdown); the writes are committed anyway
        conn.close()

    def _commit(
        self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]
    ) -> tuple[list[tuple[bool, Any]], set[asyncio.AbstractEventLoop]]:
        """Run and commit ``batch``; the results, and the loops of the ops that enqueued (to wake)."""
        results: list[tuple[bool, Any]] = []
        wake: set[asyncio.AbstractEventLoop] = set()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, future in batch:
                conn.execute("SAVEPOINT op")
                self._queue_flag = False
                try:
                    value = op(conn)
                except Exception as exc:  # the op's own error goes to its caller only
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    if isinstance(exc, sqlite3.Error):
                        exc = BackendUnavailableError(f"SQLite write failed: {exc}")
                    results.append((False, exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((True, value))
                    if self._queue_flag:
                        wake.add(future.get_loop())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = BackendUnavailableError(f"SQLite commit failed: {exc}")
            return [(False, error)] * len(batch), set()
        return results, wake


def _settle_all(
    settled: list[tuple[asyncio.Future[Any], bool, Any]], listeners: list[Callable[[], None]]
) -> None:
    """On the caller's loop: answer a batch's writers, then wake the queue if the batch enqueued."""
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    for listener in listeners:
        listener()


# -- the queue table, written by the store (in its transactions) and by the queue ---------------

ENQUEUE = (
    "INSERT INTO queue (job_id, type, priority, seq, visible_us) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id) DO UPDATE SET type = excluded.type, priority = excluded.priority,"
    " visible_us = excluded.visible_us, receipt = NULL, dead = 0"
)


def queue_row(job: Job, visible_us: int) -> tuple[Any, ...]:
    return (job.id, job.type, job.priority, micros(job.created_at), visible_us)


def visible_us(job: Job) -> int:
    """When a job enqueued now becomes receivable: at once, or at its ``run_at``."""
    return max(micros(job.updated_at), 0 if job.run_at is None else micros(job.run_at))


def enqueue_in(conn: sqlite3.Connection, job: Job, visible_us: int) -> None:
    """Put (or put back) ``job``'s one message in the queue table."""
    conn.execute(ENQUEUE, queue_row(job, visible_us))


def ack_in(conn: sqlite3.Connection, delivery: Delivery) -> None:
    """Delete ``delivery``'s message unless it was received again since."""
    conn.execute("DELETE FROM queue WHERE job_id = ? AND receipt = ?", (delivery.job_id, delivery.receipt))


def hide_in(conn: sqlite3.Connection, delivery: Delivery, seconds: float) -> None:
    """Hide ``delivery``'s message for ``seconds`` from now (not the take's whole visibility), unless it
    was received again since."""
    until = time.time_ns() // 1000 + int(seconds * 1e6)
    conn.execute(
        "UPDATE queue SET visible_us = ? WHERE job_id = ? AND receipt = ?",
        (until, delivery.job_id, delivery.receipt),
    )
