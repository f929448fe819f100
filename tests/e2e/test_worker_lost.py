"""``kill -9`` a real worker process: LOST after three heartbeat intervals, one alert, and a restart is a new ACTIVE entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.alerts import Alerter
from core.backends import open_backends
from core.backends.store.operations import operations_for
from core.jobtypes import JobTypeRegistry
from core.operations import FORGET_AFTER, WorkerRecord, WorkerStatus
from core.service import JobService
from core.settings import Settings
from tests.core.test_alerts import Receiver
from tests.support.jobtypes import JOB_TYPES
from tests.support.process import JobpulseProcess
from tests.support.services import BACKENDS

HEARTBEAT = "1.0"  # LOST after 3 s: a loaded machine does not stall a live worker that long


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of the worker process, and of this test's own service."""
    base = {
        "JOBPULSE_JOB_MODULES": "tests.support.jobtypes",
        "JOBPULSE_WORKER_HEARTBEAT_SECONDS": HEARTBEAT,
        "JOBPULSE_WAIT_TIME_SECONDS": "0.2",
        "JOBPULSE_LOG_FORMAT": "json",
    }
    if request.param == "embedded":
        return {**base, "JOBPULSE_DATA_DIR": str(tmp_path / "data")}
    distributed: dict[str, str] = request.getfixturevalue("distributed_env")
    return {**distributed, **base}


def _settings(env: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        key.removeprefix("JOBPULSE_").lower(): value
        for key, value in env.items()
        if key.startswith("JOBPULSE_")
    }
    values.update(overrides)
    return Settings(**values)


async def _until(
    service: JobService, what: str, test: Callable[[list[WorkerRecord]], object]
) -> list[WorkerRecord]:
    """Poll the registry until ``test(records)`` holds; fail after 90 s (a loaded machine), naming ``what``."""
    store = operations_for(service.store)
    async with asyncio.timeout(90):  # a deadline poll
        while True:
            records = await store.list_workers(service.clock() - FORGET_AFTER)
            if test(records):
                return records
            await asyncio.sleep(0.05)


async def test_killed_worker_is_lost_alerted_once_and_restarts_active(
    env: dict[str, str], tmp_path: Path, receiver: Receiver
) -> None:
    """kill -9: LOST once three heartbeats are missed, one worker_lost alert; a restart is listed ACTIVE."""
    settings = _settings(env, alert_webhook_url=receiver.url, alert_check_interval_seconds=3600)
    async with open_backends(settings) as backends:
        service = JobService(
            backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings
        )
        worker = JobpulseProcess(["worker", "--types", "noop"], env, tmp_path / "worker.log").start()
        try:
            now = service.clock
            [first] = await _until(
                service, "the worker", lambda rs: [r.status(now()) for r in rs] == ["ACTIVE"]
            )
            worker.kill()
            [lost] = await _until(service, "LOST", lambda rs: rs and rs[0].status(now()) is WorkerStatus.LOST)
            assert lost.id == first.id
            assert (now() - lost.last_seen_at).total_seconds() >= 3 * float(HEARTBEAT)

            stop = asyncio.Event()
            alerters = [Alerter(service), Alerter(service)]  # as two API processes would
            tasks = [asyncio.create_task(a.run(stop)) for a in alerters]
            for alerter in alerters * 2:
                await alerter.operations.check_workers()
            stop.set()
            await asyncio.gather(*tasks)
            [alert] = receiver.of("worker_lost")
            assert alert["figures"]["worker_id"] == first.id

            worker.start()
            records = await _until(
                service, "a new worker", lambda rs: len(rs) == 2 and rs[1].status(now()).value == "ACTIVE"
            )
            assert {r.id: r.status(now()).value for r in records} == {
                first.id: "LOST",
                records[1].id: "ACTIVE",
            }
        finally:
            worker.terminate()
