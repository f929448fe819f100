"""Prometheus metrics, in a registry of their own per app: job counters and timings from job events,
queue depths refreshed on each scrape, the open-subscriptions gauge (kept by
``api.subscription_gauge``), and the ``/metrics`` route.

Counters are derived from the events this process writes (``JobService.listeners``), so a process
that only serves the API counts submissions and cancellations, and one that runs workers counts
starts, completions and failures; Prometheus sums them across processes.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from datetime import datetime

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import BackendUnavailableError
from core.flow_control import HoldReason
from core.models import JobEvent, JobEventKind
from core.service import JobService

__all__ = ["JobMetrics", "metrics_routes"]

log = structlog.get_logger("jobpulse.metrics")

#: seconds; from a no-op handler to an hour-long import
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
)
#: jobs whose "ready since" time is remembered between their CREATED/RETRYING and STARTED events
READY_MEMORY = 100_000

_COUNTED = {
    JobEventKind.CREATED: "submitted",
    JobEventKind.STARTED: "started",
    JobEventKind.COMPLETED: "completed",
    JobEventKind.FAILED: "failed",
    JobEventKind.RETRYING: "retried",
    JobEventKind.CANCELLED: "cancelled",
}


class JobMetrics:
    """Every jobpulse metric, registered in ``self.registry`` (never the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.service: JobService | None = None
        if process:
            ProcessCollector(registry=self.registry)
        self.jobs = {
            name: Counter(
                f"jobpulse_jobs_{name}", f"Jobs {name}, by job type.", ["type"], registry=self.registry
            )
            for name in _COUNTED.values()
        }
        self.run_seconds = Histogram(
            "jobpulse_job_run_seconds",
            "Run time of completed jobs (completedAt - startedAt), by job type.",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "jobpulse_job_queue_wait_seconds",
            "Time from ready (created, runAt or retry due) to started, by job type.",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "jobpulse_queue_depth",
            "Messages waiting (ready or delayed), by job type.",
            ["type"],
            registry=self.registry,
        )
        self.dead_letter_depth = Gauge(
            "jobpulse_dead_letter_depth",
            "Messages in the dead-letter queue, by job type.",
            ["type"],
            registry=self.registry,
        )
        self.subscriptions_open = Gauge(
            "jobpulse_subscriptions_open",
            "GraphQL subscriptions open on this process.",
            registry=self.registry,
        )
        self.events_published = Counter(
            "jobpulse_events_published",
            "Job events written and published by this process, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.jobs_held = Counter(
            "jobpulse_jobs_held",
            "Claims held back by flow control (the message waits; no attempt used), by job type and"
            " reason: paused, concurrency, key, rate.",
            ["type", "reason"],
            registry=self.registry,
        )
        self.submits_rate_limited = Counter(
            "jobpulse_submits_rate_limited",
            "Jobs refused by JOBPULSE_RATE_LIMIT (RATE_LIMITED, nothing created): each input of a"
            " refused batch counts.",
            registry=self.registry,
        )
        self._ready_since: OrderedDict[str, datetime] = OrderedDict()

    def install(self, service: JobService) -> None:
        """Count ``service``'s events from now on, and read its stats on each scrape."""
        self.service = service
        service.listeners.append(self.observe)
        if service.controls is not None:
            service.controls.held_listeners.append(self.observe_held)
        if service.submit_limit is not None:
            service.submit_limit.refused_listeners.append(self.submits_rate_limited.inc)

    def observe_held(self, type: str, reason: HoldReason) -> None:
        """Count a claim held back by flow control (a ``FlowControl`` held listener)."""
        self.jobs_held.labels(type=type, reason=reason.value).inc()

    def observe(self, event: JobEvent) -> None:
        """Update the counters and histograms for one job event (a ``JobService`` listener)."""
        self.events_published.labels(kind=event.kind.value).inc()
        counter = _COUNTED.get(event.kind)
        if counter is not None:
            self.jobs[counter].labels(type=event.type).inc()
        job = event.job
        if event.kind is JobEventKind.CREATED:
            self._remember_ready(job.id, job.run_at or job.created_at)
        elif event.kind is JobEventKind.RETRYING:
            self._remember_ready(job.id, job.run_at or event.at)
        elif event.kind is JobEventKind.STARTED and job.started_at is not None:
            ready = self._ready_since.pop(job.id, None)
            if ready is None and job.attempts == 1:
                ready = job.created_at  # created before this process started
            if ready is not None:
                wait = (job.started_at - ready).total_seconds()
                self.queue_wait_seconds.labels(type=job.type).observe(max(0.0, wait))
        elif event.kind is JobEventKind.COMPLETED and job.started_at and job.completed_at:
            run = (job.completed_at - job.started_at).total_seconds()
            self.run_seconds.labels(type=job.type).observe(max(0.0, run))
        if job.is_terminal:
            self._ready_since.pop(job.id, None)

    def _remember_ready(self, job_id: str, at: datetime) -> None:
        self._ready_since[job_id] = at
        self._ready_since.move_to_end(job_id)
        while len(self._ready_since) > READY_MEMORY:
            self._ready_since.popitem(last=False)

    async def refresh_depths(self) -> None:
        """Set the queue and dead-letter gauges from the service's current stats."""
        if self.service is None:
            return
        try:
            stats = await self.service.stats()
        except BackendUnavailableError as exc:
            log.warning("queue depths not refreshed", error=str(exc))
            return
        for name, depth in stats.queues.items():
            self.queue_depth.labels(type=name).set(depth.waiting)
            self.dead_letter_depth.labels(type=name).set(depth.dead)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_routes(metrics: JobMetrics, token: str | None = None) -> list[BaseRoute]:
    """``GET /metrics``: open, or only for ``Authorization: Bearer <token>`` when a token is set."""

    async def endpoint(request: Request) -> Response:
        if token is not None and not _bearer_matches(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "metrics need Authorization: Bearer <JOBPULSE_METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        await metrics.refresh_depths()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", endpoint, methods=["GET"], name="metrics")]


def _bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
