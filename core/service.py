"""``JobService``: the one write path. Every change is a conditional write, then an event.

A write reads the job, asks the state machine (``core.models``) for the next version, and writes
it on condition that the stored version is still the one read (``core.write_path``). The service
is split by who calls it: submission (``core.service_submit``), workers (``core.service_worker``),
and here the reads, the client actions (cancel, retry) and the sweeper's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from core.backends import control_store_for, flow_store_for
from core.blobs import BlobStore
from core.controls import FlowControl
from core.cursors import JobCursor, to_micros
from core.errors import InvalidStateError, JobNotFoundError
from core.flow_control import TypeLimits, declared_limits
from core.flows import Flows
from core.jobtypes import JobTypeRegistry
from core.models import (
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    JobEventKind,
    JobId,
    JobStatus,
    LogLevel,
    Principal,
    utcnow,
)
from core.ports import (
    CancelRequested,
    EventBus,
    JobFilter,
    JobQueue,
    JobStore,
    QueueDepth,
    StoreStats,
    TransactionalStore,
)
from core.service_submit import SubmitSide
from core.service_worker import ClaimedDeliveries, ClaimResult, WorkerSide
from core.settings import Settings
from core.submission import MAX_DELAY_SECONDS, SubmitRequest, check_range
from core.write_path import MessageFate

if TYPE_CHECKING:
    from core.submit_rate import SubmitRateLimit

__all__ = [
    "ClaimResult",
    "ClaimedDeliveries",
    "JobPage",
    "JobService",
    "MessageFate",
    "Stats",
    "SubmitRequest",
]

log = structlog.get_logger("jobpulse.service")

#: jobs read and written per page of ``cancel_matching`` / ``retry_matching``
BULK_PAGE_SIZE = 500
#: writes of one page in flight at once
BULK_CONCURRENCY = 32
#: what ``retry_matching`` acts on
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
#: what ``cancel_matching`` acts on: every status that is not final
CANCELLABLE = frozenset(JobStatus) - TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class Stats:
    store: StoreStats
    queues: dict[str, QueueDepth]


class JobService(SubmitSide, WorkerSide):
    """Submit, read, cancel, retry; and, for workers, claim, report and finish."""

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        bus: EventBus,
        registry: JobTypeRegistry,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        blobs: BlobStore | None = None,
        transaction: TransactionalStore | None = None,
        submit_limit: SubmitRateLimit | None = None,
    ) -> None:
        """``transaction``: ``Backends.transaction`` (the store's one-transaction capability), if any.
        ``submit_limit``: ``JOBPULSE_RATE_LIMIT``, taken by ``admit`` (the API's submits)."""
        super().__init__(
            store, queue, bus, registry, settings, clock=clock, blobs=blobs, transaction=transaction
        )
        self.submit_limit = submit_limit
        with suppress(TypeError):  # a store with no flow store beside it keeps no dependencies
            self.flows = Flows(self, flow_store_for(store))
        with suppress(TypeError):  # nor flow control
            control_store = control_store_for(store, settings, self.controls_declared)
            self.controls = FlowControl(control_store, registry, bus)

    def controls_declared(self, type: str) -> TypeLimits:
        """A type's declared limits (what the store's in-claim gate starts from)."""
        return declared_limits(self.registry.get(type)) if type in self.registry else TypeLimits()

    async def admit(self, principal: Principal, count: int = 1) -> None:
        """Count ``count`` submits of the caller against ``JOBPULSE_RATE_LIMIT`` before any is made;
        ``RateLimitedError`` if over (the API calls it; schedules' own submits are not counted)."""
        if self.submit_limit is not None:
            await self.submit_limit.take(principal.subject, count)

    # -- reading --------------------------------------------------------------------------
    async def get(self, principal: Principal, job_id: JobId) -> Job | None:
        """The job, or ``None`` if it does not exist or the caller may not see it."""
        job = await self.store.get(job_id)
        return job if job is not None and principal.can_see(job) else None

    def scope(self, principal: Principal, filter: JobFilter) -> JobFilter:
        """Narrow a filter to what the caller may see (a user's owner filter is its own)."""
        if principal.is_admin:
            return filter
        return JobFilter(
            statuses=filter.statuses,
            type=filter.type,
            owner=principal.subject,
            created_after=filter.created_after,
            created_before=filter.created_before,
            schedule_id=filter.schedule_id,
            flow_id=filter.flow_id,
        )

    async def list(self, principal: Principal, filter: JobFilter, first: int, after: str | None) -> JobPage:
        check_range("first", first, 0, 500)
        cursor = JobCursor.decode(after) if after else None
        jobs = await self.store.list_jobs(self.scope(principal, filter), first + 1, cursor)
        return JobPage(jobs=jobs[:first], has_next_page=len(jobs) > first)

    async def count(self, principal: Principal, filter: JobFilter) -> int:
        return await self.store.count_jobs(self.scope(principal, filter))

    async def stats(self) -> Stats:
        store_stats, depths = await asyncio.gather(self.store.stats(), self.queue.depths(self.registry.names))
        return Stats(store=store_stats, queues=depths)

    # -- client actions -------------------------------------------------------------------
    async def _visible(self, principal: Principal, job_id: JobId) -> Job:
        job = await self.get(principal, job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id} not found", field="id")
        return job

    async def cancel(self, principal: Principal, job_id: JobId) -> Job:
        """PENDING: it never runs. PROCESSING: the worker holding it is told to stop the handler."""
        return await self._cancel(principal, await self._visible(principal, job_id))

    async def _cancel(self, principal: Principal, job: Job) -> Job:
        """``cancel`` of a job the caller may see, read as ``job`` (re-read if it changed since)."""
        job_id = job.id
        now = self.clock()

        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            if job.status is JobStatus.PROCESSING:
                if job.cancel_requested:
                    return None
                new = job.cancel_requested_now(now)
                return new, JobEvent.of(
                    new, JobEventKind.LOG, f"cancel requested by {principal.subject}", LogLevel.INFO
                )
            new = job.cancelled(now)
            return new, JobEvent.of(new, JobEventKind.CANCELLED, f"cancelled by {principal.subject}")

        new = await self._write(job_id, decide, current=job)
        if new.status is JobStatus.PROCESSING:
            try:
                await self.bus.publish_control(CancelRequested(job_id))
            except Exception as exc:  # the cancel is stored: the heartbeat sees it
                log.warning(
                    "cancel signal not published; the heartbeat will see it", job_id=job_id, error=repr(exc)
                )
        return new

    async def retry(self, principal: Principal, job_id: JobId) -> Job:
        """FAILED or CANCELLED: back to PENDING with attempts reset, and enqueued again."""
        return await self._retry(principal, await self._visible(principal, job_id))

    async def _retry(self, principal: Principal, job: Job) -> Job:
        """``retry`` of a job the caller may see, read as ``job`` (re-read if it changed since)."""
        job_id = job.id
        now = self.clock()

        def decide(job: Job) -> tuple[Job, JobEvent]:
            new = job.retried(now)
            return new, JobEvent.of(new, JobEventKind.RETRYING, f"retried by {principal.subject}")

        new = await self._write(job_id, decide, current=job)
        if new.enqueued_at is None:
            await self._send(new)
        return new

    # -- bulk client actions (cancelJobs, retryJobs) --------------------------------------
    async def cancel_matching(
        self, principal: Principal, filter: JobFilter, *, page_size: int = BULK_PAGE_SIZE
    ) -> int:
        """``cancel`` every job the caller may see that matches ``filter``; how many were cancelled
        (or, running, told to stop). Jobs already final, or finishing meanwhile, are left as they are."""
        return await self._each_matching(
            self._narrowed(principal, filter, CANCELLABLE),
            page_size,
            lambda job: self._cancel(principal, job),
        )

    async def retry_matching(
        self, principal: Principal, filter: JobFilter, *, page_size: int = BULK_PAGE_SIZE
    ) -> int:
        """``retry`` every FAILED or CANCELLED job the caller may see that matches ``filter``; how many
        went back to PENDING."""
        narrowed = self._narrowed(principal, filter, RETRYABLE)
        return await self._each_matching(narrowed, page_size, lambda job: self._retry(principal, job))

    def _narrowed(
        self, principal: Principal, filter: JobFilter, statuses: frozenset[JobStatus]
    ) -> JobFilter | None:
        """``filter`` as the caller may see it, its statuses cut to ``statuses``; ``None``: no match."""
        wanted = statuses if filter.statuses is None else filter.statuses & statuses
        return replace(self.scope(principal, filter), statuses=wanted) if wanted else None

    async def _each_matching(
        self, filter: JobFilter | None, page_size: int, action: Callable[[Job], Awaitable[Job]]
    ) -> int:
        """Apply ``action`` to every job ``filter`` lists, a page at a time (newest first, by keyset:
        jobs submitted meanwhile are not reached), up to ``BULK_CONCURRENCY`` writes at once. Each is
        the one-job action's own conditional write: a job that another writer finished since it was
        listed is decided again on what is stored, and refused, not clobbered."""
        if filter is None:
            return 0
        done = 0
        gate = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(job: Job) -> bool:
            async with gate:
                try:
                    written = await action(job)
                except (InvalidStateError, JobNotFoundError):
                    return False  # finished, or gone, since it was listed
                return written.version > job.version  # not when nothing was left to write

        cursor: JobCursor | None = None
        while True:
            page = await self.store.list_jobs(filter, page_size, cursor)
            if not page:
                return done
            done += sum(await asyncio.gather(*(one(job) for job in page)))
            if len(page) < page_size:
                return done
            cursor = JobCursor(to_micros(page[-1].created_at), page[-1].id)
            await asyncio.sleep(0)  # let requests waiting on the loop through between pages

    async def sweep(self, limit: int = 500) -> int:
        """Send every PENDING job that was never enqueued (or waited outside the queue) and is due."""
        now = self.clock()
        due = await self.store.find_unenqueued(
            updated_before=now - timedelta(seconds=self.settings.sweep_grace_seconds),
            run_before=now + timedelta(seconds=min(self.queue.max_delay_seconds, MAX_DELAY_SECONDS)),
            limit=limit,
        )
        for job in due:
            await self._send(job)
        if due:
            log.info("sweeper enqueued jobs", count=len(due))
        return len(due)

    async def redrive_dead_letters(self, type: str) -> int:
        """Move a type's dead letters back: each FAILED job is retried (attempts reset) and sent."""
        self.registry.get(type)
        admin = Principal("system", "admin")
        moved = 0
        for job_id in await self.queue.redrive_dead_letters(type):
            try:
                await self.retry(admin, job_id)
                moved += 1
            except (JobNotFoundError, InvalidStateError):
                continue  # retried by hand already, or gone: nothing to bring back
        return moved
