"""Prometheus metrics, in a registry of their own per app: job counters and timings from job events,
queue depths refreshed on each scrape, open subscriptions, and the ``/metrics`` route.

Counters are derived from the events this process writes (``JobService.listeners``), so a process
that only serves the API counts submissions and cancellations, and one that runs workers counts
starts, completions and failures; Prometheus sums them across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import orjson
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from core.errors import BackendUnavailableError
from core.models import JobEvent, JobEventKind
from core.service import JobService
from core.settings import Settings

__all__ = ["JobMetrics", "OpenSubscriptions", "metrics_routes", "serving_worker_metrics"]

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
        self._ready_since: OrderedDict[str, datetime] = OrderedDict()

    def install(self, service: JobService) -> None:
        """Count ``service``'s events from now on, and read its stats on each scrape."""
        self.service = service
        service.listeners.append(self.observe)

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


@contextlib.asynccontextmanager
async def serving_worker_metrics(service: JobService, settings: Settings) -> AsyncIterator[None]:
    """``/metrics`` and ``/healthz`` of a ``jobpulse worker``, on ``settings.worker_metrics_port``
    while the block runs (nothing when it is unset); ``OSError`` if that port cannot be had. The
    worker's own signal handling stays in charge: this server only stops when the block ends."""
    if settings.worker_metrics_port is None:
        yield
        return
    import uvicorn  # only processes that serve HTTP need it

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # SIGTERM and SIGINT are the worker's: it finishes or releases its jobs first

    metrics = JobMetrics()
    metrics.install(service)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    app = Starlette(routes=[*metrics_routes(metrics, settings.metrics_token), Route("/healthz", healthz)])
    # Bound here, before any job is taken: a port in use is an OSError for the caller to report,
    # not uvicorn's exit from inside a task while the workers already run.
    host, port = settings.host, settings.worker_metrics_port
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listening = socket.create_server((host, port), family=family)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]), name="jobpulse-worker-metrics")
    try:
        yield
    finally:
        server.should_exit = True
        await serving
        listening.close()


def _bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


# Client and server message types of graphql-transport-ws and of the legacy graphql-ws protocol.
_STARTS = frozenset({"subscribe", "start"})
_CLIENT_ENDS = frozenset({"complete", "stop"})
_SERVER_ENDS = frozenset({"complete", "error"})
_NO_STARTS: frozenset[str] = frozenset()
#: the quoted types each direction is filtered on, computed once (this runs per message sent)
_RECEIVED_MARKERS = tuple(f'"{kind}"' for kind in sorted(_STARTS | _CLIENT_ENDS))
_SENT_MARKERS = tuple(f'"{kind}"' for kind in sorted(_SERVER_ENDS))


def _mentions(text: str, markers: tuple[str, ...]) -> bool:
    for marker in markers:
        if marker in text:
            return True
    return False


class OpenSubscriptions:
    """Keeps ``jobpulse_subscriptions_open`` at the number of operations open on one websocket.

    It reads only each message's ``type`` and ``id``: a subscription opens with the client's
    ``subscribe`` and ends with either side's ``complete`` (or an ``error``), or when the socket
    closes (``close``).
    """

    __slots__ = ("gauge", "open_ids")

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.open_ids: set[str] = set()

    def received(self, message: Message) -> None:
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text and _mentions(text, _RECEIVED_MARKERS):
                self._track(text, _STARTS, _CLIENT_ENDS)

    def sent(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            text = message.get("text")
            if text and _mentions(text, _SENT_MARKERS):  # cheap filter: most traffic is "next"
                self._track(text, _NO_STARTS, _SERVER_ENDS)

    def _track(self, text: str, starts: frozenset[str], ends: frozenset[str]) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            return
        kind, op_id = message.get("type"), message["id"]
        if kind in starts and op_id not in self.open_ids:
            self.open_ids.add(op_id)
            self.gauge.inc()
        elif kind in ends and op_id in self.open_ids:
            self.open_ids.discard(op_id)
            self.gauge.dec()

    def close(self) -> None:
        self.gauge.dec(len(self.open_ids))
        self.open_ids.clear()
