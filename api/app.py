"""The Starlette application: backends opened in the lifespan, the service in ``app.state``, routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute
from strawberry import Schema

from api import fast
from api.auth import Authenticator
from api.dashboard import dashboard_routes
from api.health import healthz, readyz
from api.metrics import JobMetrics, metrics_routes
from api.middleware import EdgeMiddleware
from api.rest import rest_routes
from api.schedule_metrics import SchedulerMetrics
from api.schema import build_schema
from api.view import GraphQLView
from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.schedules import ScheduleService
from core.service import JobService
from core.settings import Settings
from core.submit_rate import SubmitRateLimit

__all__ = ["BackgroundTask", "SchedulerTask", "create_app"]

log = structlog.get_logger("jobpulse.api")

#: runs until the event is set (workers, the sweeper, …), sharing the app's service
BackgroundTask = Callable[[JobService, asyncio.Event], Awaitable[None]]
#: the schedule loop: runs until the event is set, on the app's ``ScheduleService``
SchedulerTask = Callable[[ScheduleService, asyncio.Event], Awaitable[None]]


async def _run(task: BackgroundTask, service: JobService, stop: asyncio.Event) -> None:
    await task(service, stop)


async def _schedule(task: SchedulerTask, schedules: ScheduleService, stop: asyncio.Event) -> None:
    await task(schedules, stop)


async def _stop(tasks: list[asyncio.Task[None]], stop: asyncio.Event, grace_seconds: float) -> None:
    """Ask the background tasks to stop, wait for them up to ``grace_seconds``, then cancel the rest."""
    stop.set()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        log.warning("background task did not stop in time; cancelling it", task=task.get_name())
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception:
                log.exception("background task failed", task=task.get_name())


def create_app(
    settings: Settings,
    registry: JobTypeRegistry,
    *,
    background: Sequence[BackgroundTask] = (),
    extra_routes: Sequence[BaseRoute] = (),
    fast_paths: bool = True,
    scheduler: SchedulerTask | None = None,
) -> Starlette:
    """The API app: GraphQL on ``/graphql`` (HTTP and websockets), ``/healthz`` and ``/readyz``.

    ``background`` tasks start once the service is up and are stopped (their event set) on shutdown;
    ``extra_routes`` are appended to the routes (the dashboard, ``/metrics``). ``fast_paths=False``
    serves every request on strawberry's stock path (``api.fast``'s tests compare the two).
    ``scheduler`` (the schedule loop, ``workers.scheduler.run_scheduler``) runs like a background
    task, on the app's ``ScheduleService``.
    """
    authenticator = Authenticator.from_settings(settings)
    schema = build_schema(settings, fast_paths=fast_paths)
    view = GraphQLView(schema, authenticator)
    metrics = JobMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_backends(settings) as backends:
            service = JobService(
                backends.store,
                backends.queue,
                backends.bus,
                registry,
                settings,
                blobs=backends.blobs,
                transaction=backends.transaction,
                submit_limit=SubmitRateLimit.from_settings(settings),
            )
            metrics.install(service)
            assert backends.schedules is not None
            app.state.schedules = schedules = ScheduleService(backends.schedules, service)
            SchedulerMetrics(metrics.registry).install(schedules)
            await backends.queue.ensure_queues([t.name for t in registry if not t.external])
            app.state.settings = settings
            app.state.backends = backends
            app.state.backend_kinds = dict(backends.kinds)
            app.state.service = service
            app.state.authenticator = authenticator
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(_run(task, service, stop), name=getattr(task, "__name__", "background"))
                for task in background
            ]
            if scheduler is not None:
                tasks.append(asyncio.create_task(_schedule(scheduler, schedules, stop), name="scheduler"))
            try:
                yield
            finally:
                await _stop(tasks, stop, settings.shutdown_grace_seconds + 5)
                if service.submit_limit is not None:
                    await service.submit_limit.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/health", healthz, methods=["GET"]),
        Route("/graphql", view),
        WebSocketRoute("/graphql", view),
        *rest_routes(),
        *extra_routes,
        *metrics_routes(metrics, settings.metrics_token),
        *dashboard_routes(),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                EdgeMiddleware,
                subscriptions=metrics.subscriptions_open,
                max_bytes=settings.max_request_bytes,
            ),
            *_fast_paths(view, schema, authenticator),
        ],
        lifespan=lifespan,
    )


def _fast_paths(view: GraphQLView, schema: Schema, authenticator: Authenticator) -> list[Middleware]:
    """The JSON fast path in front of the view, imported only on the versions it was tested on."""
    if not fast.enabled():
        return []
    from api.fast.beside_multipart import fast_path_beside_multipart

    return fast_path_beside_multipart(view, schema, authenticator)
