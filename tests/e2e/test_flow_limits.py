"""Flow control across real worker processes (DESIGN.md §8), on both backends: three ``jobpulse
worker`` processes hold a concurrency limit, a key limit (in priority then submit order) and a rate
limit at once, measured by a local receiver the handlers call; a ``kill -9``'d worker's slot frees
within one lease."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.models import Job, JobStatus, Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.process import JobpulseProcess
from tests.support.receiver import PostReceiver
from tests.support.services import BACKENDS
from workers.registry import load_registry

pytestmark = pytest.mark.timeout(240)

ADMIN = Principal("e2e", "admin")
LEASE = 3.0  # the probe type's lease


class OverlapReceiver(PostReceiver):
    """Handlers POST /enter and /leave; it records when each entered and how many of each group (a
    tag's part before ``:``) were inside at once."""

    def __init__(self) -> None:
        self.inside: Counter[str] = Counter()
        self.most_inside: Counter[str] = Counter()
        self.entered: list[tuple[float, str, int]] = []
        self.first_entered = threading.Event()
        super().__init__(self._record)

    def _record(self, path: str, body: dict[str, Any]) -> None:
        group = body["tag"].split(":")[0]
        if path == "/enter":
            self.inside[group] += 1
            self.most_inside[group] = max(self.most_inside[group], self.inside[group])
            self.entered.append((time.monotonic(), body["tag"], body["attempt"]))
            self.first_entered.set()
        else:
            self.inside[group] -= 1

    def starts(self, group: str) -> list[tuple[float, str]]:
        """When each handler of ``group`` entered, and its tag, in order."""
        return [(at, tag) for at, tag, _ in self.entered if tag.split(":")[0] == group]


@pytest.fixture
def receiver() -> Iterator[OverlapReceiver]:
    with OverlapReceiver() as receiver:
        yield receiver


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of the worker processes, and of this test's own service."""
    base = {
        "JOBPULSE_JOB_MODULES": "tests.e2e.flow_jobtypes",
        "JOBPULSE_WAIT_TIME_SECONDS": "0.5",
        "JOBPULSE_WORKER_CONCURRENCY": "4",
        "JOBPULSE_LOG_FORMAT": "json",
    }
    if request.param == "embedded":
        return {**base, "JOBPULSE_DATA_DIR": str(tmp_path / "data")}
    distributed: dict[str, str] = request.getfixturevalue("distributed_env")
    return {**distributed, **base}


@asynccontextmanager
async def service_for(env: dict[str, str]) -> AsyncIterator[JobService]:
    values = {k.removeprefix("JOBPULSE_").lower(): v for k, v in env.items() if k.startswith("JOBPULSE_")}
    settings = Settings(**values)
    async with open_backends(settings) as backends:
        registry = load_registry(settings)
        await backends.queue.ensure_queues(registry.names)
        yield JobService(
            backends.store, backends.queue, backends.bus, registry, settings, transaction=backends.transaction
        )


def start_workers(env: dict[str, str], tmp_path: Path, count: int) -> list[JobpulseProcess]:
    types = "overlap_probe,key_probe,rate_probe"
    return [
        JobpulseProcess(["worker", "--types", types], env, tmp_path / f"worker{i}.log").start()
        for i in range(count)
    ]


async def settled(service: JobService, jobs: list[Job], seconds: float = 120) -> list[Job]:
    """Poll until every job is final (a deadline poll); the jobs as stored."""
    async with asyncio.timeout(seconds):
        while True:
            stored = [await service.store.get(job.id) for job in jobs]
            if all(job is not None and job.is_terminal for job in stored):
                return [job for job in stored if job is not None]
            await asyncio.sleep(0.1)


async def submit(
    service: JobService, receiver: OverlapReceiver, tag: str, type: str = "overlap_probe", **options: Any
) -> Job:
    payload: dict[str, Any] = {"url": receiver.url, "tag": tag}
    for name in ("seconds", "block_first_attempt"):
        if name in options:
            payload[name] = options.pop(name)
    return await service.submit(ADMIN, SubmitRequest(type=type, payload=payload, **options))


async def test_three_worker_processes_hold_a_concurrency_a_key_and_a_rate_limit(
    env: dict[str, str], tmp_path: Path, receiver: OverlapReceiver
) -> None:
    """Three worker processes with room for twelve each, three types limited at once: never more than
    two ``overlap_probe`` inside; one ``key_probe`` of a key at a time, in priority then submit order;
    never more than 5 ``rate_probe`` starts in any second (+1 for the clock edges)."""
    async with service_for(env) as service:
        controls = service.controls
        assert controls is not None
        await controls.set_limits("overlap_probe", {"concurrency": 2})
        await controls.set_limits("rate_probe", {"rate_limit": 5, "rate_period_seconds": 1.0})
        jobs = [await submit(service, receiver, f"overlap:{i}", seconds=0.4) for i in range(10)]
        priorities = [0, 5, 0, 9, 5]
        for i, priority in enumerate(priorities):
            jobs.append(
                await submit(
                    service,
                    receiver,
                    f"key:{i}",
                    "key_probe",
                    seconds=0.1,
                    priority=priority,
                    concurrency_key="c1",
                )
            )
        jobs += [await submit(service, receiver, f"rate:{i}", "rate_probe", seconds=0) for i in range(12)]
        workers = start_workers(env, tmp_path, 3)
        try:
            done = await settled(service, jobs)
        finally:
            for worker in workers:
                worker.terminate()
    assert [job.status for job in done] == [JobStatus.COMPLETED] * len(jobs)
    assert all(job.attempts == 1 for job in done)  # waiting on a limit used no attempt
    assert receiver.most_inside["overlap"] == 2
    assert receiver.most_inside["key"] == 1
    by_priority = sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))
    assert [tag for _, tag in receiver.starts("key")] == [f"key:{i}" for i in by_priority]
    # A rate meters starts as the claims admit them (``startedAt``); a handler's call to the receiver
    # comes a store write and an HTTP request later, by however long those take on a busy machine.
    rate_starts = sorted(job.started_at for job in done if job.type == "rate_probe" and job.started_at)
    assert len(rate_starts) == 12
    for i, first in enumerate(rate_starts):
        assert len([at for at in rate_starts[i:] if at - first < timedelta(seconds=1)]) <= 6
    assert rate_starts[-1] - rate_starts[0] >= timedelta(seconds=1.5)  # 12 at 5 a second take about 2 s


async def test_a_killed_workers_slot_frees_within_one_lease(
    env: dict[str, str], tmp_path: Path, receiver: OverlapReceiver
) -> None:
    """kill -9 of the worker running the one job a limit of 1 allows: the next starts within a lease.

    The next job is submitted after the kill, so that only the survivor can receive it: a message
    the dying worker had received stays hidden for the queue's 30 s visibility on SQS, which is the
    queue's rule, not the slot's."""
    async with service_for(env) as service:
        assert service.controls is not None
        await service.controls.set_limits("overlap_probe", {"concurrency": 1})
        first = await submit(service, receiver, "first", block_first_attempt=True)
        workers = start_workers(env, tmp_path, 2)
        try:
            assert await asyncio.to_thread(receiver.first_entered.wait, 90), "the first job never started"
            running = await service.store.get(first.id)
            assert running is not None and running.lease_owner is not None
            pid = int(running.lease_owner.split(":")[1])
            (holder,) = [w for w in workers if w.proc is not None and w.proc.pid == pid]
            killed_at = time.monotonic()
            holder.kill()
            second = await submit(service, receiver, "second", seconds=0.1)
            done = await settled(service, [first, second])
        finally:
            for worker in workers:
                worker.terminate()
    assert [job.status for job in done] == [JobStatus.COMPLETED] * 2
    later = [at for at, _tag, _attempt in receiver.entered[1:]]
    # The slot was the dead claim's until its lease ended (at most LEASE after the kill, the claim
    # itself taking the type's lease), then the next claim took it after a hold delay or two, and
    # on a loaded machine a few seconds of claims and process start-up more. What this guards
    # against is the slot held for the queue's 30 s visibility (issue 14).
    assert later and all(at >= killed_at for at in later)  # nothing else started while it held the slot
    assert later[0] - killed_at < 5 * LEASE, later[0] - killed_at
