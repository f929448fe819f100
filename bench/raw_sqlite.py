"""Baselines on the bare SQLite file: what the disk and SQLite allow, with no jobpulse code in the loop.

Same schema (``core.backends.sqlite_db.SCHEMA``), same pragmas (WAL, ``synchronous=FULL``), rows
encoded with the store's codec *before* the clock starts (the codec's own cost is reported
apart, see ``encode_rate``), one Python thread. These are ceilings for the embedded figures,
not competitors: they skip HTTP, GraphQL, asyncio and the store's conditional-write bookkeeping,
but keep every durability point jobpulse must keep (a commit before a submit is acknowledged,
a commit after the claim and another after the completion).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench.report import percentile
from core.backends.codec import dumps, event_to_dict, job_to_dict
from core.backends.sqlite_db import SCHEMA
from core.cursors import to_micros
from core.models import Job, JobEvent, JobEventKind, JobStatus, new_job_id, utcnow

__all__ = ["bulk_insert_rate", "commit_latency_ms", "encode_rate", "worker_loop_rate"]

INSERT_JOB = (
    "INSERT INTO jobs (id, type, owner, status, version, created_us, updated_us, run_us, enqueued_us,"
    " started_us, completed_us, idempotency_key, doc, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_EVENT = "INSERT INTO events (job_id, version, at_us, kind, type, owner, doc) VALUES (?,?,?,?,?,?,?)"
INSERT_QUEUE = "INSERT INTO queue (job_id, type, priority, seq, visible_us) VALUES (?,?,?,?,?)"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(SCHEMA)
    return conn


def _rows(n: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    now = utcnow()
    jobs, events, queue = [], [], []
    for _ in range(n):
        job = Job(
            id=new_job_id(),
            type="noop",
            owner="bench",
            payload={"note": "x"},
            created_at=now,
            updated_at=now,
            enqueued_at=now,
        )
        us = to_micros(now)
        event = JobEvent.of(job, JobEventKind.CREATED, "submitted by bench")
        jobs.append(
            (
                job.id,
                job.type,
                job.owner,
                "PENDING",
                1,
                us,
                us,
                None,
                us,
                None,
                None,
                None,
                dumps(job_to_dict(job)),
                dumps(job.payload),
            )
        )
        events.append((job.id, 1, us, "CREATED", job.type, job.owner, dumps(event_to_dict(event))))
        queue.append((job.id, job.type, 0, us, us))
    return jobs, events, queue


def bulk_insert_rate(path: Path, jobs: int = 20_000, per_commit: int = 100) -> float:
    """Jobs/s inserting job + CREATED event + queue row, ``per_commit`` jobs per durable commit."""
    conn = _connect(path)
    batches = [_rows(per_commit) for _ in range(jobs // per_commit)]
    started = time.perf_counter()
    for job_rows, event_rows, queue_rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_JOB, job_rows)
        conn.executemany(INSERT_EVENT, event_rows)
        conn.executemany(INSERT_QUEUE, queue_rows)
        conn.execute("COMMIT")
    rate = jobs // per_commit * per_commit / (time.perf_counter() - started)
    conn.close()
    return rate


def encode_rate(jobs: int = 10_000) -> float:
    """Jobs/s building a new Job, its CREATED event and their stored rows with jobpulse's codec."""
    started = time.perf_counter()
    for _ in range(jobs // 100):
        _rows(100)
    return jobs // 100 * 100 / (time.perf_counter() - started)


def worker_loop_rate(path: Path, jobs: int = 10_000, batch: int = 32) -> float:
    """Jobs/s through receive+claim (one commit per batch) then complete+event+ack (one more)."""
    conn = _connect(path)
    for start in range(0, jobs, 1000):
        job_rows, event_rows, queue_rows = _rows(min(1000, jobs - start))
        conn.execute("BEGIN")
        conn.executemany(INSERT_JOB, job_rows)
        conn.executemany(INSERT_EVENT, event_rows)
        conn.executemany(INSERT_QUEUE, queue_rows)
        conn.execute("COMMIT")
    claimed_job = Job(
        id=new_job_id(),
        type="noop",
        owner="bench",
        payload=None,
        status=JobStatus.PROCESSING,
        version=2,
        attempts=1,
    )
    done_job = Job(
        id=claimed_job.id,
        type="noop",
        owner="bench",
        payload=None,
        status=JobStatus.COMPLETED,
        version=3,
        attempts=1,
        result={"ok": True},
    )
    claimed_doc, done_doc = dumps(job_to_dict(claimed_job)), dumps(job_to_dict(done_job))
    started_doc = dumps(event_to_dict(JobEvent.of(claimed_job, JobEventKind.STARTED)))
    completed_doc = dumps(event_to_dict(JobEvent.of(done_job, JobEventKind.COMPLETED)))
    done = 0
    started = time.perf_counter()
    while True:
        now_us = time.time_ns() // 1000
        conn.execute("BEGIN IMMEDIATE")
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT job_id FROM queue WHERE type IN ('noop') AND dead = 0 AND visible_us <= ?"
                " ORDER BY priority DESC, seq LIMIT ?",
                (now_us, batch),
            )
        ]
        if not ids:
            conn.execute("COMMIT")
            break
        conn.executemany(
            "UPDATE queue SET receipt = 'r', visible_us = ?, receive_count = receive_count + 1"
            " WHERE job_id = ?",
            [(now_us + 300_000_000, i) for i in ids],
        )
        for job_id in ids:
            conn.execute("SELECT doc, payload FROM jobs WHERE id = ?", (job_id,)).fetchone()
            conn.execute(
                "UPDATE jobs SET status = 'PROCESSING', version = 2, started_us = ?, doc = ?"
                " WHERE id = ? AND version = 1",
                (now_us, claimed_doc, job_id),
            )
            conn.execute(INSERT_EVENT, (job_id, 2, now_us, "STARTED", "noop", "bench", started_doc))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for job_id in ids:
            conn.execute(
                "UPDATE jobs SET status = 'COMPLETED', version = 3, completed_us = ?, doc = ?"
                " WHERE id = ? AND version = 2",
                (now_us, done_doc, job_id),
            )
            conn.execute(INSERT_EVENT, (job_id, 3, now_us, "COMPLETED", "noop", "bench", completed_doc))
            conn.execute("DELETE FROM queue WHERE job_id = ? AND receipt = 'r'", (job_id,))
        conn.execute("COMMIT")
        done += len(ids)
    rate = done / (time.perf_counter() - started)
    conn.close()
    return rate


def commit_latency_ms(path: Path, commits: int = 300) -> tuple[float, float]:
    """p50 and p99 of one small durable commit (WAL, ``synchronous=FULL``): the disk's fsync."""
    conn = _connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (n INTEGER)")
    times = []
    for n in range(commits):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_commit VALUES (?)", (n,))
        conn.execute("COMMIT")
        times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return percentile(times, 50), percentile(times, 99)
