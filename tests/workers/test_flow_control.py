"""Flow control held by the claim (DESIGN.md §8), with several workers on one store and queue:
concurrency and key limits, rate limits, pause and resume, a dead claim's slot; on every backend."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from api.metrics import JobMetrics
from core.controls import FlowControl
from core.flow_control import HeldError, HoldReason
from core.models import Job, JobStatus
from core.service import JobService
from core.service_worker import ClaimResult
from tests.workers.conftest import MakeService, reload, submit
from tests.workers.jobtypes import PROBES, Probe
from workers.runtime import Worker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def probe() -> Iterator[Callable[[str], Probe]]:
    """Make named probes for ``gated`` jobs; forgotten after the test."""
    made: list[str] = []

    def make(name: str) -> Probe:
        PROBES[name] = made_probe = Probe()
        made.append(name)
        return made_probe

    yield make
    for name in made:
        PROBES.pop(name, None)


def controls(service: JobService) -> FlowControl:
    assert service.controls is not None
    return service.controls


@asynccontextmanager
async def workers(services: list[JobService], types: list[str], concurrency: int = 4) -> AsyncIterator[None]:
    """One worker per service runs ``types`` while the block runs."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(Worker(s, types=types, concurrency=concurrency, worker_id=f"w{i}").run(stop))
        for i, s in enumerate(services)
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def settled(service: JobService, jobs: list[Job], seconds: float = 60) -> list[Job]:
    """Poll until every job is final (bounded); the jobs as stored."""
    async with asyncio.timeout(seconds):
        while True:
            stored = [await reload(service, job) for job in jobs]
            if all(job.is_terminal for job in stored):
                return stored
            await asyncio.sleep(0.05)


async def three(make_service: MakeService) -> list[JobService]:
    """Three services on the same backends, as three worker processes have."""
    return [await make_service(), await make_service(), await make_service()]


async def test_a_concurrency_limit_of_two_is_never_exceeded_by_three_workers(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """Three workers with room for twelve run at most two jobs of a type limited to 2, all of them."""
    services = await three(make_service)
    recorder = probe("two")
    await controls(services[0]).set_limits("gated", {"concurrency": 2})
    jobs = [
        await submit(services[0], "gated", {"probe": "two", "tag": str(i), "seconds": 0.3}) for i in range(8)
    ]
    async with workers(services, ["gated"]):
        done = await settled(services[0], jobs)
    assert recorder.most_inside == 2
    assert [job.status for job in done] == [JobStatus.COMPLETED] * 8
    assert all(job.attempts == 1 for job in done)  # waiting on the limit used no attempt


async def test_a_declared_concurrency_holds_until_overridden(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """A type's declared concurrency applies by default; an override sent as null removes it."""
    service = await make_service()
    limits = await controls(service).limits("gated_declared")
    assert (limits.concurrency, limits.concurrency_per_key) == (2, 1)
    assert limits.rate_limit is not None and limits.rate_limit.limit == 50
    changed = await controls(service).set_limits("gated_declared", {"concurrency": None, "rate_limit": None})
    assert (changed.concurrency, changed.rate_limit) == (None, None)
    recorder = probe("declared")
    jobs = [
        await submit(service, "gated_declared", {"probe": "declared", "tag": str(i), "wait": True})
        for i in range(3)
    ]
    async with workers([service], ["gated_declared"]):
        async with asyncio.timeout(30):
            await recorder.reaches(3)
        recorder.opened.set()
        await settled(service, jobs)


async def test_a_key_limit_of_one_runs_its_jobs_one_at_a_time_in_priority_then_submit_order(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """Jobs of one concurrency key run one at a time, highest priority first, then in submit order."""
    services = await three(make_service)
    recorder = probe("key")
    await controls(services[0]).pause("gated")
    priorities = [0, 5, 0, 9, 5, 0]
    jobs = []
    for i, priority in enumerate(priorities):
        payload = {"probe": "key", "tag": str(i), "seconds": 0.1}
        jobs.append(
            await submit(services[0], "gated", payload, priority=priority, concurrency_key="customer-1")
        )
        await asyncio.sleep(0.002)  # distinct submit times, so submit order is the order above
    other = await submit(
        services[0], "gated", {"probe": "key", "tag": "other", "seconds": 0.1}, concurrency_key="c2"
    )
    async with workers(services, ["gated"]):
        await controls(services[0]).resume("gated")
        done = await settled(services[0], [*jobs, other])
    assert all(job.status is JobStatus.COMPLETED and job.attempts == 1 for job in done)
    order = [tag for tag in recorder.started if tag != "other"]
    expected = [str(i) for i, _ in sorted(enumerate(priorities), key=lambda item: (-item[1], item[0]))]
    assert order == expected
    keyed = sorted(
        (job for job in done if job.concurrency_key == "customer-1"), key=lambda job: job.started_at or 0
    )
    for earlier, later in itertools.pairwise(keyed):
        assert earlier.completed_at is not None and later.started_at is not None
        assert later.started_at >= earlier.completed_at  # never two of the key at once


async def test_a_rate_limit_of_five_a_second_never_starts_more_than_five_in_any_second(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """With 5 starts a second across three workers, no 1-second window holds more than 5 (+1) starts."""
    services = await three(make_service)
    probe("rate")
    await controls(services[0]).set_limits("gated", {"rate_limit": 5, "rate_period_seconds": 1.0})
    jobs = [await submit(services[0], "gated", {"probe": "rate", "tag": str(i)}) for i in range(14)]
    async with workers(services, ["gated"]):
        done = await settled(services[0], jobs)
    starts = sorted(job.started_at for job in done if job.started_at is not None)
    assert len(starts) == 14
    for i, first in enumerate(starts):
        within = [s for s in starts[i:] if s - first < timedelta(seconds=1)]
        assert len(within) <= 6
    assert starts[-1] - starts[0] >= timedelta(seconds=1.5)  # 14 starts at 5 a second take over 2 s
    assert all(job.attempts == 1 for job in done)


async def test_a_dead_claims_slot_frees_within_one_lease(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """A claim whose worker died (no heartbeat, no finish) holds its slot only until its lease ends."""
    service = await make_service()
    probe("dead")
    await controls(service).set_limits("gated_short_lease", {"concurrency": 1})
    first = await submit(service, "gated_short_lease", {"probe": "dead", "tag": "dead"})
    # Claimed as a worker claims a delivered message (the queue's 30 s lease asked for, from when
    # it asked), then the "worker" is gone before its first heartbeat: the claim took the type's 2 s.
    visibility = service.settings.visibility_timeout
    claimed = await service.claim(first.id, "ghost", visibility, leased_from=service.clock())
    assert claimed.claim is not None and claimed.job is not None and claimed.job.lease_until is not None
    lease_until = claimed.job.lease_until
    second = await submit(service, "gated_short_lease", {"probe": "dead", "tag": "second"})
    async with workers([service], ["gated_short_lease"]):
        (done,) = await settled(service, [second], seconds=30)
    assert done.status is JobStatus.COMPLETED and done.started_at is not None
    # Held while the dead claim's lease lasted, started soon after it ended (a hold delay or two).
    assert done.started_at >= lease_until
    assert done.started_at - lease_until < timedelta(seconds=4), done.started_at - lease_until


@pytest.mark.parametrize("make_service", ["embedded"], indirect=True)
async def test_a_held_message_whose_worker_died_is_back_after_the_hold_not_the_lease(
    make_service: MakeService,
) -> None:
    """Embedded only: its queue is the store, so the take that found a claim held hides the message for
    the hold's delay in the same commit, and a worker that dies before releasing it costs a hold, not
    a lease. (SQS hides a received message for the receive's visibility whatever the claim finds: a
    dead worker's messages are back within the 30 s lease, as any other.)"""
    service = await make_service()
    await controls(service).set_limits("gated", {"concurrency": 1})
    visibility = service.settings.visibility_timeout
    first = await submit(service, "gated", {"probe": "held", "tag": "first"})
    ((delivery, claimed),) = await service.receive_claims(["gated"], 1, 5.0, "holder", visibility)
    assert delivery.job_id == first.id and isinstance(claimed, ClaimResult) and claimed.claim is not None
    second = await submit(service, "gated", {"probe": "held", "tag": "second"})
    for _ in range(2):  # held and never released (its worker "died"), then back within a hold
        taken = await service.receive_claims(["gated"], 1, 5.0, "dying", visibility)
        assert taken, "the held message was not back within 5 s"
        ((delivery, outcome),) = taken
        assert delivery.job_id == second.id and isinstance(outcome, HeldError)


async def test_pause_stops_new_starts_lets_running_jobs_finish_and_keeps_submits(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """Paused: the running job finishes, submitted jobs wait unstarted (no attempt used); resumed, they run."""
    services = await three(make_service)
    recorder = probe("pause")
    held: list[HoldReason] = []
    controls(services[1]).held_listeners.append(lambda _type, reason: held.append(reason))
    running = await submit(services[0], "gated", {"probe": "pause", "tag": "running", "wait": True})
    async with workers(services, ["gated"]):
        async with asyncio.timeout(30):
            await recorder.reaches(1)
        await controls(services[0]).pause("gated")
        await asyncio.sleep(1.0)  # "within 1 s": every worker knows by now
        waiting = [await submit(services[0], "gated", {"probe": "pause", "tag": f"w{i}"}) for i in range(3)]
        recorder.opened.set()
        (finished,) = await settled(services[0], [running])
        assert finished.status is JobStatus.COMPLETED
        deadline = asyncio.get_running_loop().time() + 2.5
        while asyncio.get_running_loop().time() < deadline:  # long enough for several holds
            stored = [await reload(services[0], job) for job in waiting]
            assert all(job.status is JobStatus.PENDING and job.attempts == 0 for job in stored)
            await asyncio.sleep(0.1)
        assert recorder.started == ["running"]
        await controls(services[2]).resume("gated")
        done = await settled(services[0], waiting)
    assert all(job.status is JobStatus.COMPLETED and job.attempts == 1 for job in done)


async def test_a_pause_and_limits_are_kept_across_a_restart(make_service: MakeService) -> None:
    """What pauseJobType and setJobTypeLimits wrote is read back by a service opened afterwards."""
    first = await make_service()
    await controls(first).pause("gated")
    await controls(first).set_limits("gated", {"concurrency": 3, "concurrency_per_key": 2, "rate_limit": 7})
    again = await make_service()
    limits = await controls(again).limits("gated")
    assert limits.paused and limits.concurrency == 3 and limits.concurrency_per_key == 2
    assert limits.rate_limit is not None and (limits.rate_limit.limit, limits.rate_limit.period_seconds) == (
        7,
        1.0,
    )


async def test_held_claims_are_counted_by_type_and_reason(
    make_service: MakeService, probe: Callable[[str], Probe]
) -> None:
    """jobpulse_jobs_held_total counts each claim a limit held back, labelled by type and reason."""
    service = await make_service()
    metrics = JobMetrics(process=False)
    metrics.install(service)
    recorder = probe("metric")
    await controls(service).set_limits("gated", {"concurrency": 1})
    jobs = [
        await submit(service, "gated", {"probe": "metric", "tag": str(i), "wait": True}) for i in range(2)
    ]
    held = asyncio.Event()
    controls(service).held_listeners.append(lambda _type, _reason: held.set())
    async with workers([service], ["gated"]):
        async with asyncio.timeout(30):
            await held.wait()
        recorder.opened.set()
        await settled(service, jobs)
    sample = {"type": "gated", "reason": "concurrency"}
    assert (metrics.registry.get_sample_value("jobpulse_jobs_held_total", sample) or 0) >= 1
    assert b'jobpulse_jobs_held_total{reason="concurrency",type="gated"}' in metrics.exposition()
