"""``cancelJobs`` / ``retryJobs`` over many jobs: how long, and how long the event loop is held.

    .venv/bin/python -m bench.bulk_actions              # 10,000 jobs
    .venv/bin/python -m bench.bulk_actions --jobs 2000

In-process, embedded (a fresh SQLite store): ``--jobs`` PENDING noop jobs are submitted with
``submit_many``, then ``JobService.cancel_matching`` cancels them all and ``retry_matching`` puts
them back, each timed. Meanwhile a probe task asks the loop for a 5 ms sleep again and again; the
longest it waited beyond those 5 ms is how long a request arriving then would have been held
(the API serves on the same loop). The machine is shared: the figures are indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.models import Principal
from core.ports import JobFilter
from core.service import JobService
from core.settings import Settings
from core.submission import SubmitRequest
from tests.support.jobtypes import JOB_TYPES

ALICE = Principal("alice")
TICK = 0.005


async def _timed_with_lag(work: Callable[[], Awaitable[int]]) -> tuple[int, float, float, float]:
    """(what ``work`` answered, its seconds, the loop's longest and median extra wait in ms)."""
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(1000 * (time.perf_counter() - asked - TICK))

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    count = await work()
    seconds = time.perf_counter() - started
    done.set()
    await prober
    return count, seconds, max(lags, default=0.0), statistics.median(lags) if lags else 0.0


async def run(jobs: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data))
        async with open_backends(settings) as backends:
            service = JobService(
                backends.store,
                backends.queue,
                backends.bus,
                JobTypeRegistry(JOB_TYPES),
                settings,
                transaction=backends.transaction,
            )
            for start in range(0, jobs, 1000):
                await service.submit_many(ALICE, [SubmitRequest("noop", {})] * min(1000, jobs - start))
            print("| action | jobs changed | seconds | jobs/s | loop held, max | loop held, median |")
            print("| --- | --- | --- | --- | --- | --- |")
            actions = {
                "cancelJobs": lambda: service.cancel_matching(ALICE, JobFilter()),
                "retryJobs": lambda: service.retry_matching(ALICE, JobFilter()),
            }
            for name, action in actions.items():
                count, seconds, worst, typical = await _timed_with_lag(action)
                print(
                    f"| {name} | {count:,} | {seconds:.1f} | {count / seconds:,.0f} | "
                    f"{worst:.0f} ms | {typical:.1f} ms |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    asyncio.run(run(parser.parse_args().jobs))


if __name__ == "__main__":
    main()
