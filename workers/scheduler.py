"""``run_scheduler``: take the schedules' due ticks until stopped (DESIGN.md §7).

Any number of processes may run it (``serve``, ``api`` and ``worker`` each do, unless
``JOBPULSE_SCHEDULER_ENABLED=false``): a tick's job has an id-like key derived from the tick, and
``nextRunAt`` moves by a conditional write, so each tick makes one job however many take it.
Between rounds it sleeps until the earliest next tick, or ``scheduler_poll_seconds`` at most
(other processes create schedules it cannot hear of otherwise).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog

from core.errors import BackendUnavailableError
from core.schedules import ScheduleService

__all__ = ["run_scheduler"]

log = structlog.get_logger("jobpulse.scheduler")

#: schedules taken per round; more due ones are taken by the next round, at once
BATCH = 2_000


async def run_scheduler(schedules: ScheduleService, stop: asyncio.Event) -> None:
    """Take due ticks until ``stop``; a store that does not answer is retried next round."""
    poll = schedules.jobs.settings.scheduler_poll_seconds
    while not stop.is_set():
        wait = poll
        try:
            outcomes = await schedules.run_due(BATCH)
            if len(outcomes) >= BATCH:
                continue
            upcoming = await schedules.next_due()
            if upcoming is not None:
                wait = min(poll, max(0.0, (upcoming - schedules.clock()).total_seconds()))
        except BackendUnavailableError as exc:
            log.warning("schedule round failed; trying again", error=str(exc))
        except Exception:
            log.exception("schedule round failed unexpectedly; trying again")
        with suppress(TimeoutError):
            # A millisecond at least: a tick that came due during the round is taken next, not spun on.
            await asyncio.wait_for(stop.wait(), max(wait, 0.001))

