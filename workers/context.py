"""``WorkerContext``: the ``JobContext`` a running handler gets, and the one write path of its attempt.

Every write of an attempt (progress, logs, heartbeats, the outcome) goes through ``write``: one at a
time, each handed the job as the previous write returned it, so the service rarely has to re-read.
Progress is coalesced: at most one write per ``PROGRESS_INTERVAL``, the latest value kept and
flushed later, so a handler reporting in a tight loop does not flood the store. The claim counts as
the attempt's first write: a job's first progress is written ``PROGRESS_INTERVAL`` after it started,
so a job that ends sooner writes none, and its completion carries the last message reported (with
100%). Watchers see the same final job and a gap-free, ordered sequence of versions, only fewer of
them; ``coalesce_start = False`` (the plain path, kept for the tests that compare the two) writes a
first report at once and flushes the last one in a write of its own before the outcome.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import ClassVar

import structlog

from core.blobs import BlobStore
from core.errors import BackendUnavailableError, ConflictError, JobNotFoundError, LeaseLostError
from core.models import Claim, Job, JSONValue, LogLevel
from core.service import JobService
from core.settings import Settings

__all__ = ["MAX_LOG_CHARS", "PROGRESS_INTERVAL", "WorkerContext"]

log = structlog.get_logger("jobpulse.worker")

PROGRESS_INTERVAL = 0.1
MAX_LOG_CHARS = 4_000


class WorkerContext:
    """One attempt of one job, as its handler sees it; writes under the attempt's claim."""

    #: the claim counts as a progress write (see the module docstring); False: the plain path
    coalesce_start: ClassVar[bool] = True

    def __init__(
        self, service: JobService, claim: Claim, job: Job, *, on_lease_lost: Callable[[], None]
    ) -> None:
        self._service = service
        self._claim = claim
        self._current = job
        self._on_lease_lost = on_lease_lost
        self._lock = asyncio.Lock()
        self._pending: tuple[float, str | None] | None = None
        self._last_progress_write = time.monotonic() if self.coalesce_start else -math.inf
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.lease_lost = False

    # -- JobContext -------------------------------------------------------------------------
    @property
    def job(self) -> Job:
        """The job as of the latest write of this attempt."""
        return self._current

    @property
    def attempt(self) -> int:
        return self._claim.attempt

    @property
    def settings(self) -> Settings:
        return self._service.settings

    @property
    def blobs(self) -> BlobStore | None:
        return self._service.blobs.store

    async def dependency_results(self) -> dict[str, JSONValue]:
        """``{job id: result}`` of the job's direct COMPLETED dependencies (see ``JobContext``)."""
        flows = self._service.flows
        if flows is None or not self._current.depends_on:
            return {}
        stored = await flows.dependency_results(self._current)
        return {job_id: await self._service.blobs.resolve(value) for job_id, value in stored.items()}

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0–100); written at most every ``PROGRESS_INTERVAL``, latest value wins."""
        if not math.isfinite(percent):
            raise ValueError(f"progress must be a finite number, got {percent!r}")
        if self._closed or self.lease_lost:
            return
        percent = min(100.0, max(0.0, float(percent)))
        if self._pending is not None:
            percent = max(percent, self._pending[0])
            message = message if message is not None else self._pending[1]
        self._pending = (percent, message)
        if self._flusher is not None:
            return  # the scheduled flush writes the latest value
        wait = self._last_progress_write + PROGRESS_INTERVAL - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._flusher = asyncio.create_task(self._flush_later(wait))

    async def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        """Append a log line to the job now (long lines are cut to ``MAX_LOG_CHARS``)."""
        if self._closed or self.lease_lost:
            return
        text = str(message)
        if len(text) > MAX_LOG_CHARS:
            text = f"{text[:MAX_LOG_CHARS]}… ({len(text) - MAX_LOG_CHARS} more characters)"
        claim = self._claim
        await self._best_effort("log line", lambda job: self._service.log(claim, level, text, current=job))

    # -- for the worker ---------------------------------------------------------------------
    @property
    def claim(self) -> Claim:
        return self._claim

    async def write(self, op: Callable[[Job], Awaitable[Job]]) -> Job:
        """Run one service write, given the latest job; remember the job it returns."""
        async with self._lock:
            job = await op(self._current)
            self._current = job
            return job

    async def flush(self) -> None:
        """Write the pending progress now (before the outcome, so no report is lost)."""
        await self._stop_flusher()
        await self._flush()

    async def progress_for_completion(self) -> str | None:
        """Before a completion (which sets 100%): the pending report's message, for the completion to
        carry, instead of a write of its own; on the plain path, the pending report written now."""
        if not self.coalesce_start:
            await self.flush()
            return None
        await self._stop_flusher()
        pending, self._pending = self._pending, None
        return pending[1] if pending is not None and not self.lease_lost else None

    async def close(self) -> None:
        """End the attempt's reporting: drop pending progress; later reports do nothing."""
        self._closed = True
        self._pending = None
        await self._stop_flusher()

    # -- internals --------------------------------------------------------------------------
    async def _stop_flusher(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
            with suppress(asyncio.CancelledError):
                await flusher

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._flusher = None
        await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or self.lease_lost:
            return
        percent, message = pending
        self._last_progress_write = time.monotonic()
        claim = self._claim
        await self._best_effort(
            "progress", lambda job: self._service.progress(claim, percent, message, current=job)
        )

    async def _best_effort(self, what: str, op: Callable[[Job], Awaitable[Job]]) -> None:
        """A report that cannot be written is logged, not raised into the handler."""
        try:
            await self.write(op)
        except (LeaseLostError, JobNotFoundError):
            self.lease_lost = True
            log.warning(f"{what} not recorded: the lease was lost")
            self._on_lease_lost()
        except (BackendUnavailableError, ConflictError) as exc:
            log.warning(f"{what} not recorded", error=str(exc))
