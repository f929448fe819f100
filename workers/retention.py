"""``run_retention``: delete finished jobs, their events and logs after ``JOBPULSE_RETENTION_DAYS``.

Every ``retention_interval_seconds`` it deletes batches of ``retention_batch`` jobs until none
are left; each batch is one store write of a few milliseconds (on SQLite: one op of the writer's
group commit), so submits never wait behind a long delete. Between batches it waits nine times
what the batch took (``WRITE_SHARE``): a backlog of a million expired jobs is deleted in minutes,
in the background, taking at most about a tenth of the store's writes from the submits. Unpaced,
it cost figure 2's submits 27% (bench/README.md, figure 15b). Several processes may run it at
once: a job deleted twice is deleted once.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import structlog

from core.backends.store.operations import operations_for
from core.service import JobService

__all__ = ["delete_expired", "run_retention"]

log = structlog.get_logger("jobpulse.retention")

#: the share of its time a retention pass spends deleting while a backlog lasts (the rest it waits)
WRITE_SHARE = 0.1


async def delete_expired(service: JobService, stop: asyncio.Event | None = None) -> int:
    """Delete every expired job, batch by batch, paced (``WRITE_SHARE``); how many were deleted."""
    retention = service.settings.retention
    if retention is None:
        return 0
    store = operations_for(service.store)
    batch = service.settings.retention_batch
    deleted = 0
    while stop is None or not stop.is_set():
        began = time.monotonic()
        count = await store.delete_expired(service.clock() - retention, batch)
        deleted += count
        if count < batch:
            break
        pause = (time.monotonic() - began) * (1 - WRITE_SHARE) / WRITE_SHARE
        if stop is None:
            await asyncio.sleep(pause)
        else:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
    return deleted


async def run_retention(service: JobService, stop: asyncio.Event) -> None:
    """A background task: ``delete_expired`` every interval until ``stop``."""
    while not stop.is_set():
        try:
            deleted = await delete_expired(service, stop)
            if deleted:
                log.info("expired jobs deleted", count=deleted)
        except Exception as exc:
            log.warning("retention pass failed; trying again next round", error=str(exc))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), service.settings.retention_interval_seconds)
