"""The ``jobpulse`` command: run the server or the workers, or talk to a running server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import AsyncExitStack
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.bulk import register as register_bulk_commands
from cli.errors import StartupError, one_line_errors, set_debug, show
from cli.flow_control import register as register_flow_control_commands
from cli.schedules import register as register_schedule_commands
from core.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="jobpulse",
    help="A job queue with a GraphQL API and live subscriptions.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)  # never wrap a token or URL mid-way


def _add_flow_commands() -> None:
    from cli.flow import flow_app

    app.add_typer(flow_app, name="flow")


_add_flow_commands()

UrlOption = Annotated[
    str, typer.Option("--url", envvar="JOBPULSE_URL", help="The jobpulse server to talk to.")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="JOBPULSE_TOKEN", help="Bearer token (admin or user).")
]
DEFAULT_URL = "http://127.0.0.1:8000"


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of a configuration or start-up error.")
    ] = False,
) -> None:
    set_debug(debug)


def _settings(**overrides: Any) -> Settings:
    settings = Settings()  # invalid: pydantic's error, shown as one line naming the variable (cli.errors)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=changes) if changes else settings


def _backend_summary(settings: Settings) -> str:
    store = "MongoDB" if settings.mongodb_url else f"SQLite ({settings.database_path})"
    queue = "SQS" if settings.sqs_endpoint_url else "SQLite"
    bus = "Redis" if settings.redis_url else "in-process"
    return f"store {store}, queue {queue}, events {bus}"


def _serve(settings: Settings, *, with_workers: bool) -> None:
    import uvicorn

    from api.app import create_app
    from api.auth import load_or_create_admin_token
    from cli.startup import LifespanGuard, bind_listener, validate, wait_for_backends
    from core.alerts import run_alerter
    from core.gc_tuning import tune_gc
    from core.logs import configure_logging
    from core.stats_history import run_stats_recorder
    from core.tracing import configure_tracing, run_tracing
    from workers import run_workers
    from workers.registry import load_registry
    from workers.retention import run_retention
    from workers.scheduler import run_scheduler
    from workers.sweeper import run_sweeper

    configure_logging(settings.log_level, settings.log_format)
    # Nothing starts before the configuration is known good, the port is ours and the backends
    # answer: a problem is one line and exit 2 (cli.errors), with no worker or listener started.
    registry = load_registry(settings)
    validate(settings)
    listener = bind_listener(settings.host, settings.port)
    port = listener.getsockname()[1]
    queued = [t.name for t in registry if not t.external]
    asyncio.run(wait_for_backends(settings, queued, show))
    token = load_or_create_admin_token(settings)
    background = (
        [run_workers]
        if with_workers
        else [run_sweeper, run_alerter, run_stats_recorder, run_retention, run_tracing]
    )
    configure_tracing()
    scheduler = run_scheduler if settings.scheduler_enabled else None
    application = create_app(settings, registry, background=background, scheduler=scheduler)
    tune_gc()  # once the app is built: GC pauses were most of every p99 (core/gc_tuning.py)
    base = f"http://{settings.host}:{port}"
    console.print(f"[bold]jobpulse[/bold] on {base} — {_backend_summary(settings)}")
    console.print(f"  GraphiQL:  {base}/graphql")
    console.print(f"  Dashboard: {base}/")
    if token is not None:
        console.print(
            f"  Token:     [bold]{token}[/bold]  (admin; kept in {settings.data_dir / 'admin-token'})"
        )
    if with_workers:
        console.print(f"  Workers:   {settings.worker_concurrency} at once for {', '.join(registry.names)}")
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        ws_max_size=settings.max_request_bytes,
        ws_per_message_deflate=settings.ws_compression,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        lifespan="on",
    )
    LifespanGuard(application).run(uvicorn.Server(config), [listener])


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (JOBPULSE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (JOBPULSE_PORT).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (JOBPULSE_WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """API, dashboard and workers in one process, on the configured (or embedded) backends."""
    _serve(_settings(host=host, port=port, worker_concurrency=concurrency), with_workers=True)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address (JOBPULSE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (JOBPULSE_PORT).")] = None,
) -> None:
    """The API and dashboard only; run workers with `jobpulse worker`."""
    _serve(_settings(host=host, port=port), with_workers=False)


@app.command()
def worker(
    types: Annotated[
        str | None, typer.Option(help="Comma-separated job types to run (default: all).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (JOBPULSE_WORKER_CONCURRENCY).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Serve /metrics and /healthz on this port (JOBPULSE_WORKER_METRICS_PORT)."
        ),
    ] = None,
) -> None:
    """Workers only: take jobs from the queues and run them until SIGTERM or SIGINT."""
    from cli.startup import validate
    from core.logs import configure_logging

    settings = _settings(worker_concurrency=concurrency, worker_metrics_port=metrics_port)
    configure_logging(settings.log_level, settings.log_format)
    validate(settings)
    wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
    asyncio.run(_run_worker(settings, wanted))


async def _run_worker(settings: Settings, types: list[str] | None) -> None:
    from api.worker_metrics import serving_worker_metrics
    from cli.startup import wait_for_backends
    from core.backends import open_backends
    from core.gc_tuning import tune_gc
    from core.schedules import ScheduleService
    from core.service import JobService
    from core.tracing import configure_tracing
    from workers import run_workers
    from workers.registry import load_registry
    from workers.scheduler import run_scheduler

    configure_tracing()
    registry = load_registry(settings)
    for name in types or []:
        if name not in registry:
            known = ", ".join(registry.names)
            raise StartupError(f"unknown job type {name!r} in --types", f"use some of {known}")
    await wait_for_backends(settings, [t.name for t in registry if not t.external], show)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_backends(settings) as backends:
        service = JobService(
            backends.store,
            backends.queue,
            backends.bus,
            registry,
            settings,
            blobs=backends.blobs,
            transaction=backends.transaction,
        )
        await backends.queue.ensure_queues([t.name for t in registry if not t.external])
        console.print(f"[bold]jobpulse worker[/bold] — {_backend_summary(settings)}")
        if settings.worker_metrics_port is not None:
            console.print(f"  Metrics:   http://{settings.host}:{settings.worker_metrics_port}/metrics")
        async with AsyncExitStack() as serving:
            try:
                await serving.enter_async_context(serving_worker_metrics(service, settings))
            except OSError as exc:
                raise StartupError(
                    f"cannot serve metrics on port {settings.worker_metrics_port}: {exc.strerror or exc}",
                    "stop what uses that port, or set JOBPULSE_WORKER_METRICS_PORT (or --metrics-port)",
                ) from exc
            tune_gc()  # once the service is built: fewer, shorter GC pauses (core/gc_tuning.py)
            if settings.scheduler_enabled and backends.schedules is not None:
                schedules = ScheduleService(backends.schedules, service)
                loop_task = asyncio.create_task(run_scheduler(schedules, stop))
                serving.push_async_callback(_stopped, loop_task, stop)
            await run_workers(service, stop, types=types)


async def _stopped(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """End a loop that ``stop`` ends, and wait for it."""
    stop.set()
    await task


@app.command()
def submit(
    type: Annotated[str, typer.Argument(help="The job type, e.g. data_analysis.")],
    payload: Annotated[str, typer.Argument(help="The payload as JSON, e.g. '{\"data\": [1, 2, 3]}'.")],
    watch: Annotated[bool, typer.Option("--watch", help="Show live progress until the job ends.")] = False,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    delay: Annotated[int, typer.Option(help="Seconds before it may start.")] = 0,
    max_attempts: Annotated[int | None, typer.Option(help="Default: the job type's.")] = None,
    timeout: Annotated[int | None, typer.Option(help="Seconds per attempt; default: the job type's.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Same key within 24 h returns the first job.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Submit a job and print its id; with --watch, follow it live and exit 0 only if it COMPLETED."""
    from cli.client import submit_job, watch_job

    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError as exc:
        console.print(f"[red]PAYLOAD_JSON is not valid JSON:[/red] {exc}")
        raise typer.Exit(2) from exc
    job_input: dict[str, Any] = {"type": type, "payload": parsed, "priority": priority, "delaySeconds": delay}
    if max_attempts is not None:
        job_input["maxAttempts"] = max_attempts
    if timeout is not None:
        job_input["timeoutSeconds"] = timeout
    if idempotency_key is not None:
        job_input["idempotencyKey"] = idempotency_key
    job_id = asyncio.run(submit_job(console, url, token, job_input))
    print(job_id)
    if watch:
        status = asyncio.run(watch_job(console, url, token, job_id))
        raise typer.Exit(0 if status == "COMPLETED" else 1)


@app.command()
def jobs(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="Only jobs in this status (repeat, or comma-separate, for several)."
        ),
    ] = None,
    type: Annotated[str | None, typer.Option("--type", "-t", help="Only jobs of this type.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many, newest first.")
    ] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List jobs, newest first, as a table (a user sees its own jobs, an admin everyone's)."""
    from cli.client import STATUSES, list_jobs, stdout_console

    wanted = [part.strip().upper() for value in status or [] for part in value.split(",") if part.strip()]
    unknown = sorted(set(wanted) - set(STATUSES))
    if unknown:
        console.print(f"[red]unknown status {', '.join(unknown)}[/red] (one of {', '.join(STATUSES)})")
        raise typer.Exit(2)
    asyncio.run(list_jobs(console, stdout_console(), url, token, list(dict.fromkeys(wanted)), type, limit))


@app.command()
def stats(url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Show counts by status, failure rate, processing time and queue depths (admin token)."""
    from cli.client import show_stats, stdout_console

    asyncio.run(show_stats(console, stdout_console(), url, token))


@app.command()
def workers(url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Show the workers seen in the last hour: status, running jobs and counts (admin token)."""
    from cli.client import stdout_console
    from cli.workers_client import show_workers

    asyncio.run(show_workers(console, stdout_console(), url, token))


@app.command()
def check(
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds each backend has to answer.")] = 5.0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON document instead of lines.")] = False,
) -> None:
    """Check the configuration and every backend it names; exit 0 only when all is well."""
    from cli.check import render, run_checks

    checks = run_checks(_settings(), timeout=timeout)
    sys.stdout.write(render(checks, as_json=json_output) + "\n")
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (what schema.graphql holds)."""
    from api.schema import build_schema

    sys.stdout.write(build_schema(Settings()).as_str().rstrip("\n") + "\n")


register_schedule_commands(app)
register_bulk_commands(app)
register_flow_control_commands(app)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with one_line_errors():
        app()


if __name__ == "__main__":
    main()
