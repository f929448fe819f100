"""The operations alerts (issue 15), decided for ``core.alerts.Alerter``:

* ``worker_lost`` — a worker's registry record went silent for three heartbeat intervals. The
  store marks the record alerted in the same conditional write that decides who alerts, so of
  all the processes that check, one alerts, once (a restarted worker is a new record).
* ``queue_depth`` — more than ``JOBPULSE_ALERT_QUEUE_DEPTH`` messages wait in a type's queue.
* ``slow`` — the p95 run time of a type's last ``SLOW_SAMPLES`` completed attempts seen by this
  process (at least ``JOBPULSE_ALERT_MIN_SAMPLES`` of them) is over ``JOBPULSE_ALERT_SLOW_SECONDS``.

Each goes through ``Alerter.raise_alert``: deduplicated and rate-limited like the others.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from core.backends.store.operations import operations_for
from core.models import JobEvent, JobEventKind
from core.operations import FORGET_AFTER, WorkerStatus
from core.ports import QueueDepth

if TYPE_CHECKING:
    from core.alerts import Alerter

__all__ = ["SLOW_SAMPLES", "OperationsAlerts"]

#: run times kept per type for the p95 of ``slow``
SLOW_SAMPLES = 200
#: Lambda containers are reaped as a matter of course: their silence is not an alert
_EPHEMERAL_PREFIX = "lambda:"


class OperationsAlerts:
    """The state and checks of the three operations alerts of one ``Alerter``."""

    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter
        self.settings = alerter.settings
        self._runs: dict[str, deque[float]] = {}

    def on_event(self, event: JobEvent) -> None:
        threshold = self.settings.alert_slow_seconds
        job = event.job
        if threshold is None or event.kind is not JobEventKind.COMPLETED or job.started_at is None:
            return
        runs = self._runs.get(job.type)
        if runs is None:
            runs = self._runs[job.type] = deque(maxlen=SLOW_SAMPLES)
        runs.append((event.at - job.started_at).total_seconds())
        if len(runs) < self.settings.alert_min_samples:
            return
        ordered = sorted(runs)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        if p95 > threshold:
            from core.alerts import Alert

            self.alerter.raise_alert(
                Alert(
                    "slow",
                    job.type,
                    f"{job.type} jobs run slowly: p95 {p95:.1f}s over the last {len(ordered)} "
                    f"(threshold {threshold:g}s)",
                    {"p95_seconds": round(p95, 3), "threshold_seconds": threshold, "samples": len(ordered)},
                )
            )

    def check_depth(self, type: str, depth: QueueDepth) -> None:
        threshold = self.settings.alert_queue_depth
        if threshold is None or depth.waiting <= threshold:
            return
        from core.alerts import Alert

        self.alerter.raise_alert(
            Alert(
                "queue_depth",
                type,
                f"{depth.waiting} {type} messages are waiting (threshold {threshold})",
                {"waiting": depth.waiting, "threshold": threshold, "in_flight": depth.in_flight},
            )
        )

    async def check_workers(self) -> None:
        """Alert once for each worker that went LOST (one process of all of them alerts)."""
        from core.alerts import Alert

        service = self.alerter.service
        store = operations_for(service.store)
        now = service.clock()
        for worker in await store.list_workers(now - FORGET_AFTER):
            if worker.lost_alerted or worker.id.startswith(_EPHEMERAL_PREFIX):
                continue
            if worker.status(now) is not WorkerStatus.LOST:
                continue
            if not await store.claim_lost_alert(worker.id, now - worker.lost_before()):
                continue
            silent = (now - worker.last_seen_at).total_seconds()
            self.alerter.raise_alert(
                Alert(
                    "worker_lost",
                    worker.id,
                    f"worker {worker.id} ({worker.host}, pid {worker.pid}) is LOST: no heartbeat for "
                    f"{silent:.0f}s; it was running {len(worker.running)} jobs",
                    {
                        "worker_id": worker.id,
                        "host": worker.host,
                        "pid": worker.pid,
                        "silent_seconds": round(silent, 3),
                        "running": list(worker.running),
                    },
                )
            )
