"""Figure 12, workflows (issue 12), embedded mode, in-process (no HTTP: the service calls themselves).

    bench/run --only 12                        # both rows, through the harness (quiet machine, load)
    .venv/bin/python -m bench.flows            # both rows, printed as table rows

12a: ``submitFlow`` of 1,000 jobs (one root, 998 in parallel after it, one fan-in after those)
     against ``submitJobs`` (``JobService.submit_many``) of the same 1,000 jobs; median of 7 runs
     each, each on a fresh SQLite store. Target: ≤ 3×.
12b: the fan-in job's start (its STARTED event written) after its last dependency's COMPLETED event
     was written, one in-process worker at concurrency 16 running the whole flow; 20 runs, p50/p99.
     Target: p99 ≤ 50 ms.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.report import Row, percentile, table
from core.backends import open_backends
from core.flows import FlowItem
from core.jobtypes import JobTypeRegistry
from core.models import JobEvent, JobEventKind, Principal
from core.service import JobService
from core.settings import Settings
from core.submission import SubmitRequest
from tests.support.jobtypes import JOB_TYPES
from workers.runtime import Worker

ALICE = Principal("alice")
NOOP = SubmitRequest("noop", {})


def fan_in(width: int = 998) -> list[FlowItem]:
    """One root, ``width`` jobs after it, one fan-in after all of those."""
    middle = [FlowItem(f"m{n}", NOOP, ("root",)) for n in range(width)]
    return [FlowItem("root", NOOP), *middle, FlowItem("sheet", NOOP, tuple(m.key for m in middle))]


@asynccontextmanager
async def embedded() -> AsyncIterator[JobService]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data))
        async with open_backends(settings) as backends:
            yield JobService(
                backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings
            )


async def submit_times(runs: int = 7) -> tuple[float, float]:
    """Median seconds of ``submitFlow`` and of ``submitJobs``, 1,000 jobs each."""
    flow_s: list[float] = []
    many_s: list[float] = []
    for _ in range(runs):
        async with embedded() as service:
            assert service.flows is not None
            items = fan_in()
            started = time.perf_counter()
            await service.flows.submit_flow(ALICE, "bench", items)
            flow_s.append(time.perf_counter() - started)
        async with embedded() as service:
            requests = [NOOP] * 1000
            started = time.perf_counter()
            await service.submit_many(ALICE, requests)
            many_s.append(time.perf_counter() - started)
    return statistics.median(flow_s), statistics.median(many_s)


async def fan_in_delay_ms() -> float:
    """One flow run by a worker: ms from the last middle job's COMPLETED to the fan-in's STARTED."""
    async with embedded() as service:
        assert service.flows is not None
        completed: dict[str, float] = {}
        started: dict[str, float] = {}
        done = asyncio.Event()

        def listener(event: JobEvent) -> None:
            if event.kind is JobEventKind.COMPLETED:
                completed[event.job_id] = time.perf_counter()
            elif event.kind is JobEventKind.STARTED:
                started[event.job_id] = time.perf_counter()
                if event.job_id == sheet_id:
                    done.set()

        view = await service.flows.submit_flow(ALICE, "bench", fan_in())
        sheet_id = view.jobs["sheet"].id
        middle = [job.id for key, job in view.jobs.items() if key.startswith("m")]
        service.listeners.append(listener)
        stop = asyncio.Event()
        worker = Worker(service, concurrency=16, types=["noop"])
        running = asyncio.create_task(worker.run(stop))
        await asyncio.wait_for(done.wait(), 120)
        stop.set()
        await running
        return (started[sheet_id] - max(completed[m] for m in middle)) * 1000


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def rows() -> list[Row]:
    """Rows 12a and 12b, each with the share of a core this process used while measuring it."""
    wall, cpu = time.monotonic(), _cpu_seconds()
    flow_s, many_s = await submit_times()
    share_a = 100 * (_cpu_seconds() - cpu) / (time.monotonic() - wall)
    wall, cpu = time.monotonic(), _cpu_seconds()
    delays = [await fan_in_delay_ms() for _ in range(20)]
    share_b = 100 * (_cpu_seconds() - cpu) / (time.monotonic() - wall)
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    return [
        Row(
            "12a",
            "`submitFlow` of 1,000 jobs (1 root, 998 parallel, 1 fan-in), in-process, embedded",
            f"**{flow_s * 1000:.0f} ms** = **{flow_s / many_s:.2f}×**",
            f"`submitJobs` (submit_many) of the same 1,000 jobs: {many_s * 1000:.0f} ms",
            "≤ 3×",
            flow_s <= 3 * many_s,
            f"this process {share_a:.0f}%; median of 7 runs each, fresh store each run",
        ),
        Row(
            "12b",
            "fan-in job of a 1,000-job flow: STARTED after its last dependency's COMPLETED, embedded",
            f"**p50 {p50:.1f} ms, p99 {p99:.1f} ms** (max {max(delays):.1f})",
            "—",
            "p99 ≤ 50 ms",
            p99 <= 50,
            f"this process {share_b:.0f}%; 20 runs, one in-process worker, concurrency 16",
        ),
    ]


def figure12() -> list[Row]:
    """The harness's entry (``bench/run --only 12``)."""
    return asyncio.run(rows())


def main() -> None:
    print(table(figure12()))


if __name__ == "__main__":
    main()
