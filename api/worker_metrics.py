"""``/metrics`` and ``/healthz`` of a ``jobpulse worker`` process, on a port of its own.

A worker serves no API; this small HTTP server gives Prometheus the worker's counters (starts,
completions, failures) while the workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.metrics import JobMetrics, metrics_routes
from core.service import JobService
from core.settings import Settings

__all__ = ["serving_worker_metrics"]


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
