"""Jobs put in place before a figure is measured.

* ``submit_jobs``: N jobs through ``JobService.submit_many`` on the embedded backends (the real
  write path, without HTTP), for the worker and subscription figures;
* ``million``: 1,000,000 finished jobs with their three events each, bulk-inserted straight into
  the store's schema (figure 8), cached in ``bench/.data/`` and copied for each run.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path

import orjson

from bench.procs import REPO, TOKEN
from core.backends.codec import job_to_dict
from core.backends.sqlite_db import SCHEMA
from core.models import Job, JobStatus, Principal

__all__ = ["copy_million", "million", "submit_jobs"]

CACHE = REPO / "bench" / ".data" / "seed"
MILLION_FILE = "million-v1.sqlite3"
MILLION = 1_000_000


def submit_jobs(
    data_dir: Path,
    count: int,
    type: str = "noop",
    payload: dict[str, object] | None = None,
    extra_env: dict[str, str] | None = None,
    chunk: int = 1000,
) -> list[str]:
    """Create ``count`` jobs in the data dir's store and queue; return their ids in order."""
    saved = dict(os.environ)
    os.environ.update(
        {
            "JOBPULSE_JOB_MODULES": "tests.support.jobtypes",
            "JOBPULSE_API_KEYS": f"{TOKEN}=bench:admin",
            **(extra_env or {}),
        }
    )
    try:
        return _submit(data_dir, count, type, payload, chunk)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _submit(
    data_dir: Path, count: int, type: str, payload: dict[str, object] | None, chunk: int
) -> list[str]:
    from core.backends import open_backends
    from core.service import JobService, SubmitRequest
    from core.settings import Settings
    from workers.registry import load_registry

    settings = Settings(data_dir=data_dir)
    registry = load_registry(settings)

    async def run() -> list[str]:
        ids: list[str] = []
        async with open_backends(settings) as backends:
            service = JobService(
                backends.store,
                backends.queue,
                backends.bus,
                registry,
                settings,
                transaction=backends.transaction,
            )
            await backends.queue.ensure_queues([t.name for t in registry if not t.external])
            principal = Principal("bench", "admin")
            for start in range(0, count, chunk):
                requests = [SubmitRequest(type, payload or {"note": "bench"})] * min(chunk, count - start)
                for job in await service.submit_many(principal, requests):
                    assert isinstance(job, Job), job
                    ids.append(job.id)
        return ids

    return asyncio.run(run())


def _job_id(micros: int, rng: random.Random) -> str:
    value = ((micros // 1000) & 0xFFFFFFFFFFFF) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def million(log: object = print) -> Path:
    """The cached store of 1,000,000 finished jobs (built on first use: about two minutes)."""
    path = CACHE / MILLION_FILE
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    log(f"seeding {MILLION:,} jobs into {path} (cached for later runs)")  # type: ignore[operator]
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.executescript(SCHEMA)
    rng = random.Random(6)
    now_us = time.time_ns() // 1000
    first_us = now_us - 30 * 86_400 * 1_000_000  # spread over the last 30 days, oldest first
    step = (now_us - first_us) // MILLION
    template = job_to_dict(Job(id="x", type="noop", owner="bench", payload=None))
    types = ["noop", "sleep", "flaky", "fail"]
    kinds = {JobStatus.COMPLETED: "COMPLETED", JobStatus.FAILED: "FAILED", JobStatus.CANCELLED: "CANCELLED"}
    batch = 20_000
    for start in range(0, MILLION, batch):
        jobs, events = [], []
        for n in range(start, start + batch):
            created = first_us + n * step
            roll = rng.random()
            status = (
                JobStatus.COMPLETED
                if roll < 0.95
                else JobStatus.FAILED
                if roll < 0.98
                else JobStatus.CANCELLED
            )
            job_id, type_ = _job_id(created, rng), types[n % 4]
            started_us, done_us = created + 2_000, created + 2_000 + rng.randrange(1_000, 2_000_000)
            base = {
                **template,
                "id": job_id,
                "type": type_,
                "created_at": created,
                "enqueued_at": created,
                "updated_at": created,
            }
            claimed = {
                **base,
                "status": "PROCESSING",
                "version": 2,
                "attempts": 1,
                "started_at": started_us,
                "updated_at": started_us,
                "lease_owner": "seed:1:abc",
            }
            final = {
                **claimed,
                "status": status.value,
                "version": 3,
                "updated_at": done_us,
                "completed_at": done_us,
                "lease_owner": None,
                "result": {"ok": True, "n": n} if status is JobStatus.COMPLETED else None,
                "error": "always fails" if status is JobStatus.FAILED else None,
                "progress": 100.0 if status is JobStatus.COMPLETED else 0.0,
            }
            jobs.append(
                (
                    job_id,
                    type_,
                    "bench",
                    status.value,
                    3,
                    created,
                    done_us,
                    None,
                    created,
                    started_us,
                    done_us,
                    None,
                    orjson.dumps(final),
                    b'{"note":"seed"}',
                )
            )
            for version, at, kind, doc, message in (
                (1, created, "CREATED", base, "submitted by bench"),
                (2, started_us, "STARTED", claimed, "attempt 1 of 3 on seed:1:abc"),
                (3, done_us, kinds[status], final, None),
            ):
                event = {
                    "job_id": job_id,
                    "version": version,
                    "kind": kind,
                    "at": at,
                    "message": message,
                    "level": None,
                    "job": doc,
                }
                events.append((job_id, version, at, kind, type_, "bench", orjson.dumps(event)))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO jobs (id, type, owner, status, version, created_us, updated_us, run_us, enqueued_us,"
            " started_us, completed_us, idempotency_key, doc, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            jobs,
        )
        conn.executemany(
            "INSERT INTO events (job_id, version, at_us, kind, type, owner, doc) VALUES (?,?,?,?,?,?,?)",
            events,
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(path)
    log(f"seeded in {time.monotonic() - started:.0f}s")  # type: ignore[operator]
    return path


def copy_million(data_dir: Path) -> Path:
    """A private copy of the seeded store as ``data_dir``'s database (the runs write to it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "jobpulse.sqlite3"
    shutil.copyfile(million(), target)
    return target
