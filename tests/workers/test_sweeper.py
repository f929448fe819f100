"""The sweeper loop and ``run_workers``."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import BackendUnavailableError
from core.models import JobEventKind, JobStatus
from tests.workers.conftest import FakeClock, MakeService, on_event, reload, submit
from workers import run_workers
from workers.sweeper import run_sweeper


async def test_sweeper_survives_backend_errors(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that fails is logged and the next round runs on schedule."""
    service = await make_service(sweep_interval_seconds=0.01)
    rounds = 0
    third = asyncio.Event()

    async def sweep(limit: int = 500) -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            third.set()
        if rounds == 1:
            raise BackendUnavailableError("store down")
        if rounds == 2:
            raise RuntimeError("something unexpected")
        return 0

    monkeypatch.setattr(service, "sweep", sweep)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sweeper(service, stop))
    await third.wait()
    stop.set()
    await task
    assert rounds >= 3


async def test_sweeper_stops_promptly(make_service: MakeService) -> None:
    """Setting stop ends the sweeper without waiting out its interval."""
    service = await make_service(sweep_interval_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sweeper(service, stop))
    await asyncio.sleep(0)
    stop.set()
    async with asyncio.timeout(5):
        await task


async def test_sweeper_ends_a_job_nobody_started_in_time(make_service: MakeService) -> None:
    """With no worker running, the sweeper loop ends a job past ``expiresInSeconds`` CANCELLED "expired"."""
    clock = FakeClock()
    service = await make_service(clock, sweep_interval_seconds=0.05)
    job = await submit(service, "noop", {}, expires_in_seconds=1)
    cancelled = on_event(service, job.id, JobEventKind.CANCELLED)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sweeper(service, stop))
    clock.advance(2)
    async with asyncio.timeout(20):
        await cancelled.wait()
    stop.set()
    await task
    ended = await reload(service, job)
    assert (ended.status, ended.error) == (JobStatus.CANCELLED, "expired")


async def test_run_workers_runs_jobs_until_stopped(make_service: MakeService) -> None:
    """``run_workers`` runs jobs with a worker and the sweeper side by side, and returns on stop."""
    service = await make_service()
    job = await submit(service, "noop", {})
    completed = on_event(service, job.id, JobEventKind.COMPLETED)
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(service, stop, concurrency=2))
    await completed.wait()
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert (await reload(service, job)).status is JobStatus.COMPLETED
