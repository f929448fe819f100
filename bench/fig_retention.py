"""Figure 15b/15c: retention deleting 1,000,000 expired jobs under figure 2's submit load, and
``statsHistory`` over HTTP with those million jobs stored (issue 15).

    .venv/bin/python -m bench.fig_retention                    # 1,000,000 jobs, 60 s runs
    .venv/bin/python -m bench.fig_retention --jobs 200000 --seconds 20

One embedded data directory is seeded with ``--jobs`` COMPLETED jobs finished 40 days ago (raw
SQLite inserts, in the store's own row format). Then two runs of figure 2's load (``submitJob``,
noop, 64 connections from ``bench/httpload.py``, 2 s warm-up, ``--seconds`` measured) against
``jobpulse api`` on that directory: first with retention off (``JOBPULSE_RETENTION_DAYS=0``), then
with it on (30 days), when every seeded job is expired and the process deletes them in batches of
``JOBPULSE_RETENTION_BATCH`` from its start. The second run must be over before retention is, or it
does not measure submits *during* deletion: the script says so. It then waits for the last
deletion and prints how long all of it took. Target: the submit rate during deletion ≥ 0.9× of
the rate without. 15c: after the first run's load, with the million jobs and 30 days × 3 types of
per-minute stats rows stored, 200 ``statsHistory`` requests one after another (24 h in 900 s
buckets, and 1 h in 60 s buckets), p50 and p99 as the client sees them. Target p99 ≤ 10 ms.
The machine is shared: run it quiet (``bench/procs.quiet_machine``).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from datetime import timedelta
from pathlib import Path

import httpx

from bench.fig_http import SUBMIT, _exact
from bench.procs import TOKEN, jobpulse, quiet_machine, scratch_dir
from core.backends import open_backends
from core.backends.codec import dumps, job_to_dict
from core.backends.store.operations import operations_for
from core.models import Job, JobStatus, utcnow
from core.operations import MinuteStats, histogram_bucket, minute_of
from core.settings import Settings

CONNECTIONS = 64
SEED_CHUNK = 20_000


async def _seed(data: Path, jobs: int) -> None:
    """``jobs`` COMPLETED jobs finished 40 days ago, in the store's own rows; 30 days of stats rows."""
    async with open_backends(Settings(data_dir=data)) as backends:
        db = backends.store.db  # type: ignore[attr-defined]
        ops = operations_for(backends.store)
        now = minute_of(utcnow())
        stats = [
            MinuteStats(now - m, f"type{t}", submitted=100, started=100, completed=97, failed=3,
                        run_ms={histogram_bucket(0.2): 90, histogram_bucket(2.0): 10}, queue_depth=5)
            for m in range(30 * 1440) for t in range(3)
        ]  # fmt: skip
        for start in range(0, len(stats), 5000):
            await ops.add_stats(stats[start : start + 5000])
        old = utcnow() - timedelta(days=40)
        for start in range(0, jobs, SEED_CHUNK):
            batch = [
                Job(id=f"old-{i:08d}", type="noop", owner="bench", payload={"note": "old"},
                    status=JobStatus.COMPLETED, created_at=old, updated_at=old, completed_at=old)
                for i in range(start, min(jobs, start + SEED_CHUNK))
            ]  # fmt: skip
            rows = [
                (j.id, j.type, j.owner, j.status.value, d["created_at"], d["updated_at"], d["completed_at"],
                 dumps(d), dumps(j.payload))
                for j in batch for d in [job_to_dict(j)]
            ]  # fmt: skip

            def insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]] = rows) -> None:
                conn.executemany(
                    "INSERT INTO jobs (id, type, owner, status, version, created_us, updated_us,"
                    " completed_us, doc, payload) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                    rows,
                )

            await db.write(insert)


def _old_left(data: Path) -> int:
    with sqlite3.connect(Settings(data_dir=data).database_path, timeout=30) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM jobs WHERE id LIKE 'old-%'").fetchone()
    return int(count)


STATS = (
    "query($since: DateTime, $bucket: Int!)"
    " { statsHistory(since: $since, bucketSeconds: $bucket) { at completed } }"
)


def _stats_history(url: str, span: timedelta, bucket: int, requests: int = 200) -> tuple[float, float]:
    """p50 and p99 (ms) of ``statsHistory`` requests made one after another."""
    times: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        for _ in range(requests):
            since = (utcnow() - span).isoformat()
            started = time.perf_counter()
            answer = client.post(
                "/graphql", json={"query": STATS, "variables": {"since": since, "bucket": bucket}}
            )
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def _run(data: Path, name: str, seconds: float, **env: str) -> tuple[float, list[str]]:
    """Submit jobs/s; then, with the load over, the statsHistory rows."""
    server, url = jobpulse("api", name, data, **env)
    try:
        marker = '"status":"PENDING"'
        rate = _exact(f"{url}/graphql", SUBMIT, server.pid, CONNECTIONS, seconds=seconds, marker=marker).rate
        rows = []
        for label, span, bucket in (
            ("24 h / 900 s", timedelta(hours=24), 900),
            ("1 h / 60 s", timedelta(hours=1), 60),
        ):
            _stats_history(url, span, bucket, requests=20)  # the first request of a process reads the rows
            p50, p99 = _stats_history(url, span, bucket)
            stored = f"{_old_left(data):,} old jobs stored"
            rows.append(f"statsHistory {label}, {stored}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        return rate, rows
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with scratch_dir("retention") as data:
        started = time.perf_counter()
        asyncio.run(_seed(data, args.jobs))
        print(f"seeded {args.jobs:,} expired jobs in {time.perf_counter() - started:.0f} s")
        quiet_machine()
        without, stats_rows = _run(data, "retention-off", args.seconds, JOBPULSE_RETENTION_DAYS="0")
        assert _old_left(data) == args.jobs, "retention off deleted jobs"
        quiet_machine()
        server, url = jobpulse("api", "retention-on", data, JOBPULSE_RETENTION_DAYS="30")
        began = time.perf_counter()
        try:
            marker = '"status":"PENDING"'
            during = _exact(
                f"{url}/graphql", SUBMIT, server.pid, CONNECTIONS, seconds=args.seconds, marker=marker
            ).rate
            left_after_load = _old_left(data)
            while (left := _old_left(data)) > 0:
                time.sleep(1.0)
            took = time.perf_counter() - began
        finally:
            server.stop()
    deleted_during = args.jobs - left_after_load
    print(f"submitJob without retention: {without:,.0f} jobs/s")
    print(
        f"submitJob while retention deletes: {during:,.0f} jobs/s = **{during / without:.2f}×** "
        f"(target ≥ 0.9×); {deleted_during:,} of {args.jobs:,} deleted by the end of the load"
        + (
            ""
            if left_after_load
            else " (retention ended before the load did: the load's end is not under deletion)"
        )
    )
    print(f"retention: all {args.jobs:,} deleted {took:.0f} s after the process started ({left} left)")
    for row in stats_rows:
        print(row)


if __name__ == "__main__":
    main()
