"""Figures 4 and 5: a worker process draining no-op jobs, and submit → COMPLETED latency."""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import time
from pathlib import Path

from bench import raw_sqlite
from bench.procs import PYTHON, CpuMeter, Proc, jobpulse, scratch_dir
from bench.report import Row, percentile
from bench.seed import submit_jobs

__all__ = ["completed_rate", "figure4", "figure5"]

JOBS_4 = 20_000


def completed_rate(
    db: Path, total: int, pids: list[int], timeout: float = 180, where: str = "status = 'COMPLETED'"
) -> tuple[float, dict[str, float], float]:
    """Jobs/s between 10% and 90% of ``total`` done (polling the store), and the CPU % then."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    marks: dict[str, tuple[float, int]] = {}
    meter = CpuMeter(worker=pids)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = int(conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}").fetchone()[0])
            now = time.monotonic()
            if "low" not in marks and done >= total * 0.1:
                marks["low"] = (now, done)
                meter.start()
            if "high" not in marks and done >= total * 0.9:
                marks["high"] = (now, done)
                cpu = meter.stop()
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"only {done} of {total} jobs done after {timeout}s")
    finally:
        conn.close()
    (t0, n0), (t1, n1) = marks["low"], marks["high"]
    return (n1 - n0) / (t1 - t0), cpu, t1 - t0


def _drain(concurrency: int) -> tuple[float, dict[str, float]]:
    with scratch_dir(f"fig4-c{concurrency}") as data:
        submit_jobs(data, JOBS_4)
        worker, _ = jobpulse("worker", f"fig4-worker-c{concurrency}", data, "--concurrency", str(concurrency))
        try:
            rate, cpu, _ = completed_rate(data / "jobpulse.sqlite3", JOBS_4, [worker.pid])
        finally:
            worker.stop()
    return rate, cpu


def figure4() -> list[Row]:
    default_rate, default_cpu = _drain(4)
    wide_rate, wide_cpu = _drain(64)
    with scratch_dir("fig4-raw") as raw:
        raw_rate = raw_sqlite.worker_loop_rate(raw / "raw.sqlite3", batch=32)
    best = max(default_rate, wide_rate)
    return [
        Row(
            "4",
            "no-op jobs run by one `jobpulse worker` process (claim, run, complete, events published)",
            f"**{default_rate:,.0f} jobs/s** at the default concurrency 4; **{wide_rate:,.0f} jobs/s** at 64",
            f"raw SQLite, same statements, 32 jobs per claim commit and per completion commit: "
            f"{raw_rate:,.0f} jobs/s (Dramatiq ~4.9k/s)",
            "≥ 5,000 jobs/s",
            best >= 5000,
            f"worker {default_cpu['worker']:.0f}% (c=4), {wide_cpu['worker']:.0f}% (c=64) (machine "
            f"{default_cpu['machine']:.0f}%, {wide_cpu['machine']:.0f}% of 200%); "
            f"{JOBS_4:,} jobs queued before the "
            "worker starts, rate taken between 10% and 90% done",
        )
    ]


# -- figure 5 ---------------------------------------------------------------------------------
RATE_5 = 200
SECONDS_5 = 15
WARMUP_5 = 3


def figure5() -> list[Row]:
    with scratch_dir("fig5") as data:
        server, url = jobpulse("serve", "fig5-jobpulse", data)
        try:
            client = Proc(
                "fig5-client",
                [
                    PYTHON,
                    "-m",
                    "bench.latency",
                    "--url",
                    url,
                    "--rate",
                    str(RATE_5),
                    "--seconds",
                    str(SECONDS_5),
                    "--warmup",
                    str(WARMUP_5),
                ],
                stdout=subprocess.PIPE,
            )
            meter = CpuMeter(server=server.pid).start()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            out, _ = client.popen.communicate(timeout=SECONDS_5 + 120)
            cpu = meter.stop()
            reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
            cpu["client"] = 100 * used / (time.monotonic() - meter.started)
        finally:
            server.stop()
        if client.popen.returncode != 0:
            raise RuntimeError(f"latency client failed:\n{client.output()}")
        result = json.loads(out.decode().strip().splitlines()[-1])
    with scratch_dir("fig5-raw") as raw:
        c50, c99 = raw_sqlite.commit_latency_ms(raw / "raw.sqlite3")
    delays = result["delays_ms"]
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    return [
        Row(
            "5",
            f"submit returned → subscriber receives COMPLETED, no-op job, {RATE_5} jobs/s steady "
            "(`jobpulse serve`, default settings)",
            f"**p50 {p50:.1f} ms, p99 {p99:.1f} ms**, max {max(delays):.0f} ms; {len(delays):,} jobs, "
            f"{result['missing']} never seen",
            f"one durable SQLite commit on this disk: p50 {c50:.2f} ms, p99 {c99:.2f} ms "
            "(a job needs ≥ 3 after submit: receive, claim, complete)",
            "p50 ≤ 5 ms, p99 ≤ 15 ms",
            p50 <= 5 and p99 <= 15 and result["missing"] == 0,
            f"server {cpu['server']:.0f}%, client {cpu['client']:.0f}% "
            f"(machine {cpu['machine']:.0f}% of 200%); "
            f"submit round trip p50 "
            f"{result['submit_p50_ms']:.1f} ms, p99 {result['submit_p99_ms']:.1f} ms; "
            f"achieved {result['rate']:.0f} submits/s",
        )
    ]
