"""Flow control's cost: one ``jobpulse worker`` draining no-op jobs with a concurrency limit set on the
type but never reached, against the same worker unlimited (issue 14: target ≥ 0.8×).

``python -m bench.fig_limits [jobs]`` prints both rates and the ratio. Each run seeds its own
store; the limit is written through the store's flow control (as ``setJobTypeLimits`` does) before
the worker starts. The rate is taken between 10% and 90% done, as figure 4's.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.fig_worker import completed_rate
from bench.procs import jobpulse, scratch_dir
from bench.seed import submit_jobs

__all__ = ["limited_vs_unlimited"]

JOBS = 5_000
WORKER_CONCURRENCY = 4
#: far above what one worker at concurrency 4 ever runs at once: the limit is checked, never reached
LIMIT = 1_000


async def _set_limit(data: Path, concurrency: int) -> None:
    from core.backends.sqlite_db import SqliteDatabase
    from core.backends.store.controls_sqlite import SqliteControlStore
    from core.backends.store.sqlite import SqliteJobStore
    from core.flow_control import TypeLimits

    db = SqliteDatabase(data / "jobpulse.sqlite3")
    try:
        controls = SqliteControlStore(SqliteJobStore(db), lambda _type: TypeLimits())
        await controls.write_overrides("noop", {"concurrency": concurrency})
    finally:
        await db.close()


def _drain(jobs: int, limit: int | None) -> float:
    with scratch_dir(f"limits-{limit or 'none'}") as data:
        submit_jobs(data, jobs)
        if limit is not None:
            asyncio.run(_set_limit(data, limit))
        worker, _ = jobpulse(
            "worker", f"limits-worker-{limit or 'none'}", data, "--concurrency", str(WORKER_CONCURRENCY)
        )
        try:
            rate, _cpu, _ = completed_rate(data / "jobpulse.sqlite3", jobs, [worker.pid])
        finally:
            worker.stop()
    return rate


def limited_vs_unlimited(jobs: int = JOBS) -> tuple[float, float]:
    """(unlimited jobs/s, limited-but-not-reached jobs/s), each from a fresh store."""
    return _drain(jobs, None), _drain(jobs, LIMIT)


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else JOBS
    unlimited, limited = limited_vs_unlimited(jobs)
    print(f"unlimited:                      {unlimited:,.0f} jobs/s")
    print(f"concurrency {LIMIT} (not reached): {limited:,.0f} jobs/s")
    print(f"ratio: {limited / unlimited:.2f}x (target >= 0.8x; a loaded machine makes this indicative)")


if __name__ == "__main__":
    main()
