"""``Alerter``: dead letters, failure rates and queue ages reach a webhook once per condition per cool-down."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.alerts import Alerter
from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.models import Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from tests.support.receiver import PostReceiver
from tests.support.servers import free_port
from workers import run_workers
from workers.runtime import Worker

ADMIN = Principal("root", "admin")


class Receiver(PostReceiver):
    """A local HTTP server recording the JSON body of every POST to ``/alerts``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.received = threading.Event()
        super().__init__(self._record, "/alerts")

    def _record(self, path: str, body: dict[str, Any]) -> None:
        self.bodies.append(body)
        self.received.set()

    def of(self, condition: str) -> list[dict[str, Any]]:
        return [body for body in self.bodies if body["condition"] == condition]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


Start = Callable[..., Awaitable[tuple[JobService, Alerter]]]


@pytest.fixture
async def start(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Start]:
    """``await start(clock=…, **settings)``: an embedded service with a running ``Alerter`` posting to the receiver."""
    async with AsyncExitStack() as stack:
        stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

        async def make(
            clock: Callable[[], float] | None = None, **overrides: Any
        ) -> tuple[JobService, Alerter]:
            values: dict[str, Any] = {
                "data_dir": tmp_path,
                "alert_webhook_url": receiver.url,
                "alert_check_interval_seconds": 3600,  # the tests check queues themselves
                "backoff_base_seconds": 0,
                "wait_time_seconds": 1,
                **overrides,
            }
            settings = Settings(**values)
            backends = await stack.enter_async_context(open_backends(settings))
            service = JobService(
                backends.store,
                backends.queue,
                backends.bus,
                JobTypeRegistry(JOB_TYPES),
                settings,
                transaction=backends.transaction,
            )
            alerter = Alerter(service, **({"clock": clock} if clock else {}))
            stop = asyncio.Event()
            stops.append((stop, asyncio.create_task(alerter.run(stop))))
            await asyncio.sleep(0)  # let it install its listener
            return service, alerter

        try:
            yield make
        finally:
            for stop, task in stops:
                stop.set()
                await asyncio.wait_for(task, 10)


async def finish(service: JobService, count: int, *, failed: bool, type: str = "noop") -> None:
    """Run ``count`` jobs of ``type`` to COMPLETED or FAILED through the service (playing the worker)."""
    for _ in range(count):
        job = await service.submit(ADMIN, SubmitRequest(type, {}, max_attempts=1))
        claim = (await service.claim(job.id, "w1", 60)).claim
        assert claim is not None
        if failed:
            await service.fail_attempt(claim, "boom", retryable=False)
        else:
            await service.complete(claim, {"ok": True})


async def test_many_dead_letters_make_one_alert_within_the_cooldown(start: Start, receiver: Receiver) -> None:
    """Twenty jobs dead-lettered by a worker (attempts exhausted) make one POST naming the condition, type and figures."""
    service, alerter = await start()
    for _ in range(20):
        await service.submit(ADMIN, SubmitRequest("fail", {"message": "bad input"}))

    async with asyncio.timeout(30):
        await Worker(service, burst=True).run()
    await alerter.drain()

    [alert] = receiver.bodies
    assert (alert["source"], alert["condition"], alert["type"]) == ("jobpulse", "dead_letter", "fail")
    assert alert["figures"]["error"] == "RuntimeError: bad input"
    assert alert["figures"]["attempts"] == alert["figures"]["max_attempts"] == 2
    assert "dead-letter queue" in alert["message"]


async def test_dead_letters_alert_once_per_job_type(start: Start, receiver: Receiver) -> None:
    """Failures of two job types make one dead-letter POST each."""
    service, alerter = await start()

    await finish(service, 5, failed=True, type="noop")
    await finish(service, 5, failed=True, type="fail")
    await alerter.drain()

    assert sorted(body["type"] for body in receiver.of("dead_letter")) == ["fail", "noop"]


async def test_a_failure_rate_over_the_threshold_alerts_once(start: Start, receiver: Receiver) -> None:
    """Many failures past the threshold, with enough samples, make one failure-rate POST with the figures."""
    service, alerter = await start(alert_failure_rate=50, alert_min_samples=10)

    await finish(service, 5, failed=False)
    await finish(service, 30, failed=True)
    await alerter.drain()

    [alert] = receiver.of("failure_rate")
    assert alert["type"] == "noop"
    figures = alert["figures"]
    assert (figures["failed"], figures["finished"], figures["threshold"]) == (5, 10, 50)
    assert figures["failure_rate"] == 50.0 and figures["window_seconds"] == 300


async def test_no_failure_rate_alert_below_the_minimum_sample(start: Start, receiver: Receiver) -> None:
    """All-failing but fewer finished jobs than the minimum sample make no failure-rate alert."""
    service, alerter = await start(alert_failure_rate=10, alert_min_samples=20)

    await finish(service, 19, failed=True)
    await alerter.drain()

    assert receiver.of("failure_rate") == []


async def test_no_failure_rate_alert_below_the_threshold(start: Start, receiver: Receiver) -> None:
    """A failure rate under the threshold makes no failure-rate alert."""
    service, alerter = await start(alert_failure_rate=50, alert_min_samples=10)

    await finish(service, 20, failed=False)
    await finish(service, 15, failed=True)
    await alerter.drain()

    assert receiver.of("failure_rate") == []


async def test_failures_older_than_the_window_do_not_count(start: Start, receiver: Receiver) -> None:
    """Failures that slid out of the window leave too few samples for an alert."""
    clock = Clock()
    service, alerter = await start(
        clock, alert_failure_rate=50, alert_min_samples=10, alert_window_seconds=60
    )

    await finish(service, 9, failed=True)
    clock.now += 61
    await finish(service, 9, failed=True)
    await alerter.drain()

    assert receiver.of("failure_rate") == []


async def test_after_the_cooldown_the_next_alert_counts_those_held_back(
    start: Start, receiver: Receiver
) -> None:
    """Once the cool-down has passed, the condition alerts again, saying how many alerts it held back."""
    clock = Clock()
    service, alerter = await start(clock, alert_cooldown_seconds=600)

    await finish(service, 4, failed=True)
    clock.now += 601
    await finish(service, 1, failed=True)
    await alerter.drain()

    assert [body["suppressed"] for body in receiver.of("dead_letter")] == [0, 3]


async def test_an_old_queue_message_alerts_once(start: Start, receiver: Receiver) -> None:
    """A queue whose oldest message is older than the threshold makes one POST however often it is checked."""
    service, alerter = await start(alert_queue_age_seconds=0.001)
    await service.submit(ADMIN, SubmitRequest("noop", {}))
    await service.submit(ADMIN, SubmitRequest("noop", {}))

    for _ in range(5):
        await alerter.check_queues()
    await alerter.drain()

    [alert] = receiver.of("queue_age")
    assert alert["type"] == "noop"
    assert alert["figures"]["oldest_age_seconds"] > 0.001 and alert["figures"]["waiting"] == 2


async def test_a_young_queue_does_not_alert(start: Start, receiver: Receiver) -> None:
    """Messages younger than the threshold make no queue-age alert."""
    service, alerter = await start(alert_queue_age_seconds=3600)
    await service.submit(ADMIN, SubmitRequest("noop", {}))

    await alerter.check_queues()
    await alerter.drain()

    assert receiver.of("queue_age") == []


async def test_an_alert_is_logged_at_error(start: Start) -> None:
    """Every alert is also an ERROR log line naming the condition and job type."""
    service, _ = await start()

    with capture_logs() as logs:
        await finish(service, 1, failed=True)

    [line] = [entry for entry in logs if entry.get("alert") == "dead_letter"]
    assert (line["log_level"], line["job_type"]) == ("error", "noop")


async def test_an_unreachable_webhook_never_fails_a_write(start: Start) -> None:
    """With the webhook down, failing jobs still works and the failed POST is logged as a warning."""
    service, alerter = await start(alert_webhook_url=f"http://127.0.0.1:{free_port()}/alerts")

    with capture_logs() as logs:
        await finish(service, 3, failed=True)
        await alerter.drain()

    assert any(entry["event"] == "alert webhook failed" for entry in logs)


async def test_run_workers_runs_the_alerter(start: Start, receiver: Receiver) -> None:
    """A worker process started with ``run_workers`` posts a dead-letter alert for a job it failed."""
    service, _ = await start()
    service.listeners.clear()  # only run_workers' own alerter listens now
    stop = asyncio.Event()
    await service.submit(ADMIN, SubmitRequest("fail", {"permanent": True}))

    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        group.create_task(run_workers(service, stop))
        assert await asyncio.to_thread(receiver.received.wait, 30)
        stop.set()

    assert [body["type"] for body in receiver.bodies] == ["fail"]
