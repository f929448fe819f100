"""The worker runtime and the built-in job types.

``run_workers`` is what entry points start: a ``Worker`` and the background tasks, side by side,
until the stop event is set. Entry points configure logging and wire signals; nothing here does on import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.alerts import run_alerter
from core.service import JobService
from core.stats_history import run_stats_recorder
from core.tracing import run_tracing
from workers.registry import load_registry
from workers.retention import run_retention
from workers.runtime import Worker
from workers.sweeper import run_sweeper

__all__ = ["Worker", "load_registry", "run_retention", "run_sweeper", "run_workers"]


async def run_workers(
    service: JobService,
    stop: asyncio.Event,
    *,
    types: Sequence[str] | None = None,
    concurrency: int | None = None,
) -> None:
    """Run a worker, the sweeper, the alerter, the stats recorder and retention until ``stop`` is
    set; the worker stops gracefully."""
    worker = Worker(service, types=types, concurrency=concurrency)
    async with asyncio.TaskGroup() as group:
        group.create_task(worker.run(stop))
        group.create_task(run_sweeper(service, stop))
        group.create_task(run_alerter(service, stop))
        group.create_task(run_stats_recorder(service, stop))
        group.create_task(run_retention(service, stop))
        group.create_task(run_tracing(service, stop))
