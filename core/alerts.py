"""``Alerter``: an ERROR log line and a webhook POST when something needs a person.

Three conditions, each per job type:

* ``dead_letter`` — a job FAILED for good (attempts exhausted, a permanent error, its worker lost
  on the last attempt): its message is in the dead-letter queue.
* ``failure_rate`` — of the jobs of a type that finished (COMPLETED or FAILED) in the last
  ``JOBPULSE_ALERT_WINDOW_SECONDS``, at least ``JOBPULSE_ALERT_MIN_SAMPLES``, the share that FAILED
  is at or above ``JOBPULSE_ALERT_FAILURE_RATE`` percent.
* ``queue_age`` — the oldest message waiting in a type's queue has waited longer than
  ``JOBPULSE_ALERT_QUEUE_AGE_SECONDS`` (checked every ``JOBPULSE_ALERT_CHECK_INTERVAL_SECONDS``).

The first two are decided from the events this process writes (``JobService.listeners``), the
third by polling the queue's depths. No storms: a condition of a type alerts at most once per
``JOBPULSE_ALERT_COOLDOWN_SECONDS``; the next alert counts what was held back (``suppressed``).

Several processes: each alerts for what it saw. A dead-letter alert comes from the process that
failed the job (a worker, or the API for external processors); failure rates are each process's
own share of the traffic; the queue-age check runs in every process that runs an ``Alerter`` and
is deduplicated only by each process's cool-down (``process`` in the body tells them apart).

The webhook gets ``POST`` JSON (``source``, ``condition``, ``type``, ``message``, ``figures``,
``at``, ``process``, ``suppressed``) with a timeout; a failed POST is logged, never retried or
raised. Its URL is set by the operator, so private addresses are allowed.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import httpx
import structlog

from core.alerts_operations import OperationsAlerts
from core.errors import BackendUnavailableError
from core.models import JobEvent, JobEventKind, JSONObject, JSONValue, utcnow
from core.service import JobService

__all__ = ["Alert", "Alerter", "run_alerter"]

log = structlog.get_logger("jobpulse.alerts")

#: alerts waiting to be POSTed; beyond this they are only logged
OUTBOX_SIZE = 1000
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Alert:
    """One condition of one job type, with the figures that made it."""

    condition: str
    type: str
    message: str
    figures: JSONObject = field(default_factory=dict)
    suppressed: int = 0

    def to_json(self, process: str) -> JSONObject:
        return {
            "source": "jobpulse",
            "condition": self.condition,
            "type": self.type,
            "message": self.message,
            "figures": self.figures,
            "suppressed": self.suppressed,
            "at": utcnow().isoformat(),
            "process": process,
        }


class _Window:
    """Finished and failed counts of one job type in one-second buckets over a sliding window."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.buckets: deque[list[int]] = deque()  # [second, finished, failed]
        self.finished = 0
        self.failed = 0

    def add(self, now: float, failed: bool) -> None:
        second = math.floor(now)
        if self.buckets and self.buckets[-1][0] == second:
            bucket = self.buckets[-1]
        else:
            bucket = [second, 0, 0]
            self.buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += int(failed)
        self.finished += 1
        self.failed += int(failed)
        while self.buckets and self.buckets[0][0] <= now - self.seconds:
            _, finished, dropped_failed = self.buckets.popleft()
            self.finished -= finished
            self.failed -= dropped_failed


class Alerter:
    """Decides alerts from events and queue depths; ``run`` sends them. See the module docstring."""

    def __init__(
        self,
        service: JobService,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self.settings = service.settings
        self.clock = clock
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self._transport = transport
        self._windows: dict[str, _Window] = {}
        self._last: dict[tuple[str, str], float] = {}  # (condition, type) → when it last alerted
        self._held: dict[tuple[str, str], int] = {}  # alerts held back since then
        self._outbox: asyncio.Queue[Alert] = asyncio.Queue(OUTBOX_SIZE)
        #: worker LOST, queue depth and slow runs (core/alerts_operations.py)
        self.operations = OperationsAlerts(self)

    # -- deciding ---------------------------------------------------------------------------
    def on_event(self, event: JobEvent) -> None:
        """The ``JobService`` listener: never raises into the write path."""
        try:
            if event.kind is JobEventKind.FAILED:
                self._dead_letter(event)
            if event.kind in (JobEventKind.COMPLETED, JobEventKind.FAILED):
                self._finished(event.type, event.kind is JobEventKind.FAILED)
            self.operations.on_event(event)
        except Exception:
            log.exception("alert not decided", job_id=event.job_id)

    def _dead_letter(self, event: JobEvent) -> None:
        job = event.job
        error = (job.error or "")[:MAX_ERROR_CHARS]
        self.raise_alert(
            Alert(
                "dead_letter",
                job.type,
                f"job {job.id} of type {job.type} failed after {job.attempts} of {job.max_attempts} "
                f"attempts and is in the dead-letter queue: {error}",
                {
                    "job_id": job.id,
                    "attempts": job.attempts,
                    "max_attempts": job.max_attempts,
                    "error": error,
                },
            )
        )

    def _finished(self, type: str, failed: bool) -> None:
        threshold = self.settings.alert_failure_rate
        if threshold is None:
            return
        window = self._windows.get(type)
        if window is None:
            window = self._windows[type] = _Window(self.settings.alert_window_seconds)
        window.add(self.clock(), failed)
        if window.finished < self.settings.alert_min_samples:
            return
        rate = 100.0 * window.failed / window.finished
        if rate >= threshold:
            seconds = self.settings.alert_window_seconds
            self.raise_alert(
                Alert(
                    "failure_rate",
                    type,
                    f"{rate:.1f}% of {type} jobs failed in the last {seconds:g}s "
                    f"({window.failed} of {window.finished}; threshold {threshold:g}%)",
                    {
                        "failure_rate": round(rate, 2),
                        "threshold": threshold,
                        "failed": window.failed,
                        "finished": window.finished,
                        "window_seconds": seconds,
                    },
                )
            )

    async def check_queues(self) -> None:
        """Alert for each job type whose oldest waiting message is older than the threshold (or
        whose queue is deeper than ``alert_queue_depth``)."""
        threshold = self.settings.alert_queue_age_seconds
        if threshold is None and self.settings.alert_queue_depth is None:
            return
        types = [t.name for t in self.service.registry if not t.external]
        for type, depth in (await self.service.queue.depths(types)).items():
            self.operations.check_depth(type, depth)
            if threshold is not None and depth.oldest_age_seconds > threshold:
                self.raise_alert(
                    Alert(
                        "queue_age",
                        type,
                        f"the oldest {type} message has waited {depth.oldest_age_seconds:.0f}s "
                        f"(threshold {threshold:g}s; {depth.waiting} waiting)",
                        {
                            "oldest_age_seconds": round(depth.oldest_age_seconds, 3),
                            "threshold_seconds": threshold,
                            "waiting": depth.waiting,
                            "in_flight": depth.in_flight,
                        },
                    )
                )

    def raise_alert(self, alert: Alert) -> bool:
        """Log and queue ``alert`` for the webhook, unless its condition alerted within the cool-down."""
        key = (alert.condition, alert.type)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.settings.alert_cooldown_seconds:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        alert = Alert(alert.condition, alert.type, alert.message, alert.figures, self._held.pop(key, 0))
        log.error(
            alert.message, alert=alert.condition, job_type=alert.type, suppressed=alert.suppressed,
            **alert.figures,
        )  # fmt: skip
        if self.settings.alert_webhook_url is not None:
            try:
                self._outbox.put_nowait(alert)
            except asyncio.QueueFull:
                log.warning("alert webhook backlog full; alert only logged", alert=alert.condition)
        return True

    # -- sending ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Listen to the service's events, POST alerts and check queue ages until ``stop``."""
        self.service.listeners.append(self.on_event)
        try:
            async with (
                httpx.AsyncClient(
                    timeout=self.settings.alert_timeout_seconds, transport=self._transport
                ) as client,
                asyncio.TaskGroup() as group,
            ):
                sender = group.create_task(self._send_all(client))
                await self._check_until(stop)
                await self._outbox.join()  # what was decided before the stop still goes out
                sender.cancel()
        finally:
            with suppress(ValueError):
                self.service.listeners.remove(self.on_event)

    async def drain(self) -> None:
        """Wait until every alert decided so far has been POSTed (or has failed to be)."""
        await self._outbox.join()

    async def _check_until(self, stop: asyncio.Event) -> None:
        interval = self.settings.alert_check_interval_seconds
        while not stop.is_set():
            try:
                await self.check_queues()
            except BackendUnavailableError as exc:
                log.warning("queue ages not checked; trying again next round", error=str(exc))
            except Exception:
                log.exception("queue ages not checked; trying again next round")
            try:
                await self.operations.check_workers()
            except Exception as exc:
                log.warning("workers not checked; trying again next round", error=str(exc))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _send_all(self, client: httpx.AsyncClient) -> None:
        url = self.settings.alert_webhook_url
        while True:
            alert = await self._outbox.get()
            try:
                if url is not None:
                    await self._send(client, url, alert.to_json(self.process))
            finally:
                self._outbox.task_done()

    async def _send(self, client: httpx.AsyncClient, url: str, body: dict[str, JSONValue]) -> None:
        try:
            response = await client.post(url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("alert webhook failed", alert=body["condition"], error=str(exc) or type(exc).__name__)


async def run_alerter(service: JobService, stop: asyncio.Event) -> None:
    """A background task: an ``Alerter`` over ``service`` until ``stop`` (see the module docstring)."""
    await Alerter(service).run(stop)
