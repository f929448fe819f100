"""Operations figures: ``statsHistory`` latency over a full retention of per-minute rows, and
how long retention takes to delete expired jobs, batch by batch, on the embedded store.

``python -m bench.fig_operations [--days 30] [--types 3] [--jobs 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from core.backends import open_backends
from core.backends.codec import dumps, job_to_dict
from core.backends.store.operations import operations_for
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobStatus, utcnow
from core.operations import MinuteStats, histogram_bucket, minute_of
from core.service import JobService
from core.settings import Settings
from core.stats_history import stats_history
from workers.handlers import BUILTIN_JOB_TYPES
from workers.retention import delete_expired


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(days: int, types: int, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), retention_batch=200)
        async with open_backends(settings) as backends:
            service = JobService(
                backends.store, backends.queue, backends.bus, JobTypeRegistry(BUILTIN_JOB_TYPES), settings
            )
            ops = operations_for(service.store)
            now = minute_of(utcnow())
            rows = [
                MinuteStats(now - m, f"type{t}", submitted=100, started=100, completed=97, failed=3,
                            run_ms={histogram_bucket(0.2): 90, histogram_bucket(2.0): 10}, queue_depth=5)
                for m in range(days * 1440) for t in range(types)
            ]  # fmt: skip
            for i in range(0, len(rows), 5000):
                await ops.add_stats(rows[i : i + 5000])
            for label, span, bucket in (("1 h / 60 s", 3600, 60), ("24 h / 900 s", 86400, 900)):
                times, cpu = [], []
                for _ in range(200):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    await stats_history(service, utcnow() - timedelta(seconds=span), bucket, None)
                    times.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - started_cpu) * 1000)
                wall = f"wall p50 {statistics.median(times):.2f} ms, p99 {_p(times, 0.99):.2f} ms"
                used = f"CPU p50 {statistics.median(cpu):.2f} ms, p99 {_p(cpu, 0.99):.2f} ms"
                print(f"statsHistory {label} over {len(rows)} stored rows: {wall}; {used}")

            old = utcnow() - timedelta(days=40)
            db = backends.store.db  # type: ignore[attr-defined]
            batch = [
                Job(id=f"old-{i:08d}", type="noop", owner="o", payload={}, status=JobStatus.COMPLETED,
                    created_at=old, updated_at=old, completed_at=old)
                for i in range(jobs)
            ]  # fmt: skip

            def seed(conn: object) -> None:
                conn.executemany(  # type: ignore[attr-defined]
                    "INSERT INTO jobs (id, type, owner, status, version, created_us, updated_us,"
                    " completed_us, doc, payload) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                    [
                        (j.id, j.type, j.owner, j.status.value, d["created_at"], d["updated_at"],
                         d["completed_at"], dumps(d), dumps(j.payload))
                        for j in batch for d in [job_to_dict(j)]
                    ],
                )  # fmt: skip

            await db.write(seed)
            started = time.perf_counter()
            deleted = await delete_expired(service)
            seconds = time.perf_counter() - started
            print(
                f"retention: {deleted} expired jobs deleted in {seconds:.1f} s ({deleted / seconds:,.0f}/s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--types", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.types, args.jobs))
