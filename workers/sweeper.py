"""``run_sweeper``: send PENDING jobs that never reached the queue, or whose time has come (DESIGN §2);
release dependents a crash left WAITING (§6); end CANCELLED "expired" the jobs not started in time.

Any number of processes may run it: a duplicate message is dropped at claim time. Each round also
settles the messages of external job types (``workers.external``).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog

from core.errors import BackendUnavailableError
from core.service import JobService
from workers.external import watch_external_jobs

__all__ = ["run_sweeper"]

log = structlog.get_logger("jobpulse.sweeper")


async def run_sweeper(service: JobService, stop: asyncio.Event) -> None:
    """``service.sweep()`` every ``sweep_interval_seconds`` until ``stop``; errors are logged, not fatal."""
    interval = service.settings.sweep_interval_seconds
    while not stop.is_set():
        try:
            await service.sweep()
            if service.flows is not None:
                await service.flows.sweep()  # dependents a crash left WAITING (DESIGN.md §6)
                await service.flows.expire()  # PENDING past expiresInSeconds, with no claim to notice
            await watch_external_jobs(service)
        except BackendUnavailableError as exc:
            log.warning("sweep failed; trying again next round", error=str(exc))
        except Exception:
            log.exception("sweep failed unexpectedly; trying again next round")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
