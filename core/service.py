"""``JobService``: the one write path. Every change is a conditional write, then an event.

A write reads the job, asks the state machine (``core.models``) for the next version, and writes
it on condition that the stored version is still the one read. Losing that race means someone
else changed the job: read again and decide again. The event is stored with the write and then
published on the bus (a hint for live subscribers; the store is the truth).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import structlog

from core.blobs import BlobStore, LargeValues
from core.cursors import JobCursor
from core.errors import (
    BackendUnavailableError,
    ConflictError,
    InvalidStateError,
    JobNotFoundError,
    LeaseLostError,
    UserFacingError,
    ValidationError,
)
from core.group_commit import GroupCommit
from core.jobtypes import JobTypeRegistry
from core.models import (
    Claim,
    ClaimDecision,
    Job,
    JobEvent,
    JobEventKind,
    JobId,
    JobStatus,
    JSONValue,
    LogLevel,
    Principal,
    utcnow,
)
from core.ports import (
    CancelRequested,
    Decide,
    Delivery,
    EventBus,
    JobFilter,
    JobQueue,
    JobStore,
    QueueDepth,
    StoreStats,
    TransactionalStore,
)
from core.settings import Settings
from core.submission import (
    MAX_DELAY_SECONDS,
    SubmitRequest,
    check_range,
    created_event,
    new_job,
    new_job_ids,
    next_job_id,
)

__all__ = ["ClaimResult", "JobPage", "JobService", "Stats", "SubmitRequest"]

log = structlog.get_logger("jobpulse.service")

MAX_CONFLICT_RETRIES = 20

EventListener = Callable[[JobEvent], None]


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a worker got for a message: run ``job`` under ``claim``, or only act on ``decision``."""

    decision: ClaimDecision
    job: Job | None
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    store: StoreStats
    queues: dict[str, QueueDepth]


#: each received message with its claim's result, or the error its claim raised
ClaimedDeliveries: TypeAlias = list[tuple[Delivery, "ClaimResult | Exception"]]
#: what a claim's ``decide`` decided (last), in a one-item list it rewrites
DecisionBox: TypeAlias = list[ClaimDecision]


def _claim_result(decision: ClaimDecision, job: Job, worker_id: str) -> ClaimResult:
    if decision is ClaimDecision.RUN:
        return ClaimResult(decision, job, Claim(job.id, worker_id, job.attempts))
    return ClaimResult(decision, job)


class JobService:
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
    ) -> None:
        self.store = store
        self.queue = queue
        self.bus = bus
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.listeners: list[EventListener] = []
        #: the store, when it can read, decide, write and ack in one transaction (see ``_write``)
        self.one_transaction: TransactionalStore | None = None
        shares = getattr(store, "shares_transaction_with", None)
        if shares is not None and shares(queue):
            self.one_transaction = store  # type: ignore[assignment]
        #: large payloads and results kept in ``blobs`` (references in the job); see core/blobs.py
        self.blobs = LargeValues(
            blobs,
            threshold_bytes=settings.s3_threshold_bytes,
            inline_max_bytes=settings.s3_inline_max_bytes,
            presign_seconds=settings.s3_presign_seconds,
            cache_bytes=settings.s3_cache_bytes,
        )
        #: concurrent ``submit``s' store writes, coalesced into one ``insert_many``
        self._inserts: GroupCommit[None, tuple[Job, JobEvent, datetime], tuple[Job, bool]] = GroupCommit(
            self._insert_batch, settings.max_batch_size
        )

    # -- the write path -------------------------------------------------------------------
    async def _publish(self, event: JobEvent) -> None:
        """Tell listeners and the bus of a committed write. Nothing raised here reaches the caller:
        the write is the answer (DESIGN.md §1), and subscribers resync from the store."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed", job_id=event.job_id, version=event.version)
        try:
            await self.bus.publish(event)
        except Exception as exc:  # whatever the bus raised: the event is stored
            log.warning(
                "event not published",
                job_id=event.job_id,
                version=event.version,
                error=str(exc) or type(exc).__name__,
                error_type=type(exc).__name__,
            )

    async def _write(
        self,
        job_id: JobId,
        decide: Callable[[Job], tuple[Job, JobEvent | None] | None],
        current: Job | None = None,
        *,
        ack: Delivery | None = None,
    ) -> Job:
        """Apply ``decide`` as one conditional write, re-reading and re-deciding on conflict.

        ``decide`` returns the next job and its event, or ``None`` when there is nothing to write.
        ``current`` saves the first read when the caller already holds the latest version. ``ack``:
        the job's message, deleted once the write is done (in its transaction when the store can).
        When the store and queue share a database, all of it is one transaction (one commit, no
        read through the reader pool, no conflict to retry): fig. 4's worker spent four commits
        and a read per job.
        """
        if self.one_transaction is not None:
            job, event = await self.one_transaction.decide_and_update(job_id, decide, current, ack)
            if event is not None:
                await self._publish(event)
            return job
        job = await self._write_read_then_update(job_id, decide, current)
        if ack is not None:
            await self.queue.ack(ack)
        return job

    async def _write_read_then_update(
        self,
        job_id: JobId,
        decide: Callable[[Job], tuple[Job, JobEvent | None] | None],
        current: Job | None,
    ) -> Job:
        """``_write`` through the ports alone: read, decide, conditional update, retry on conflict."""
        job = current
        for _ in range(MAX_CONFLICT_RETRIES):
            if job is None:
                job = await self.store.get(job_id)
                if job is None:
                    raise JobNotFoundError(f"job {job_id} not found", field="id")
            outcome = decide(job)
            if outcome is None:
                return job
            new, event = outcome
            written = await self.store.update(new, job.version, event)
            if written is not None:
                if event is not None:
                    await self._publish(event)
                return written
            job = None
        raise ConflictError(f"job {job_id} kept changing under {MAX_CONFLICT_RETRIES} attempts to write it")

    async def _send(self, job: Job) -> None:
        """Send a PENDING job's message; on failure the sweeper sends it later (it is stored)."""
        now = self.clock()
        delay = max(0.0, (job.run_at - now).total_seconds()) if job.run_at else 0.0
        if delay > self.queue.max_delay_seconds:
            return  # waits in the store; the sweeper sends it when it is due
        try:
            await self.queue.send(job, delay)
            await self.store.mark_enqueued(job.id, now)
        except BackendUnavailableError as exc:
            log.warning("enqueue failed; the sweeper will send it", job_id=job.id, error=str(exc))

    # -- submission -----------------------------------------------------------------------
    async def submit(self, principal: Principal, request: SubmitRequest) -> Job:
        """Create a job (or return the one its idempotency key already made) and enqueue it.

        Concurrent submissions are stored together: each joins the next ``insert_many`` of
        ``_inserts`` (the first at once, the others while it is in flight), and gets its own
        item's answer. Refusals happen before, on the caller's own input; a failed store call
        fails only the submissions of its batch.
        """
        now = self.clock()
        original = new_job(self.registry, self.settings, principal.subject, request, now, next_job_id())
        job = await self._offload_payload(original)
        event = created_event(job, f"submitted by {principal.subject}")
        window = timedelta(hours=self.settings.idempotency_window_hours)
        stored, created = await self._inserts.run(None, (job, event, now - window))
        await self._after_insert(original, job, event, stored, created)
        return stored

    async def _after_insert(
        self, original: Job, job: Job, event: JobEvent, stored: Job, created: bool
    ) -> None:
        """What follows a submission's write: a repeated idempotency key drops the blob its own
        payload became (``job`` is ``original`` after ``_offload_payload``); a new job's event is
        published and, unless the store queued it in its transaction, its message sent."""
        if not created:
            await self.blobs.discard(job.payload, original.payload)
            return
        await self._publish(event)
        if stored.enqueued_at is None:
            await self._send(stored)

    async def _insert_batch(
        self, _: None, items: list[tuple[Job, JobEvent, datetime]]
    ) -> list[tuple[Job, bool] | BaseException]:
        """``_inserts``' batch: one ``insert_many`` for the submissions that came together.

        Their idempotency windows differ by the time between their clocks' reads (the store takes
        one): the earliest is used, so a key used just before any of them still holds for all.
        """
        since = min(since for _, _, since in items)
        try:
            answers = await self.store.insert_many([(job, event) for job, event, _ in items], since)
        except ConflictError:
            # One item's own refusal (MongoDB: a key that kept changing hands), not the store
            # failing: each item again on its own, so that only its caller gets the refusal
            # (``insert`` finds a job the failed call wrote and answers it as created).
            if len(items) == 1:
                raise
            return await asyncio.gather(
                *(self.store.insert(job, event, since) for job, event, since in items), return_exceptions=True
            )
        outcomes: list[tuple[Job, bool] | BaseException] = [*answers]
        return outcomes

    async def submit_many(
        self, principal: Principal, requests: Sequence[SubmitRequest]
    ) -> list[Job | UserFacingError]:
        """Submit each request on its own: the valid ones are created even if others are refused.

        The answers are those of ``submit`` called once per request, in order (an idempotency key
        repeated within the call returns the job its first use made), but the valid jobs are
        stored by one ``insert_many``: one write, not one per job.
        """
        if len(requests) > self.settings.max_batch_size:
            raise ValidationError(
                f"at most {self.settings.max_batch_size} jobs per call, got {len(requests)}", field="inputs"
            )
        answers: list[Job | UserFacingError] = []
        valid: list[tuple[int, Job]] = []
        ids = new_job_ids(len(requests))
        for request, job_id in zip(requests, ids, strict=True):
            try:
                job = new_job(self.registry, self.settings, principal.subject, request, self.clock(), job_id)
            except UserFacingError as exc:
                answers.append(exc)
                continue
            valid.append((len(answers), job))
            answers.append(job)
        if not valid:
            return answers
        since = valid[0][1].created_at - timedelta(hours=self.settings.idempotency_window_hours)
        jobs = [await self._offload_payload(job) for _, job in valid]
        message = f"submitted by {principal.subject}"
        events = [created_event(job, message) for job in jobs]
        stored = await self.store.insert_many(list(zip(jobs, events, strict=True)), since)
        sends: list[Coroutine[Any, Any, None]] = []
        for (index, original), job, event, (written, created) in zip(
            valid, jobs, events, stored, strict=True
        ):
            answers[index] = written
            settle = self._after_insert(original, job, event, written, created)
            if created and written.enqueued_at is None:
                sends.append(settle)  # network round trips (distributed mode): one task per job
            else:
                await settle  # no task each: that would cost more than the rest of the job here
        if sends:
            await asyncio.gather(*sends)
        return answers

    async def _offload_payload(self, job: Job) -> Job:
        """``job`` with its payload stored as a blob and referred to, if large (as ``submit`` does).

        Awaited one job after the other: a payload kept inline costs no suspension (a task each
        would cost more than the rest of the job's submission); only large ones wait for a put.
        """
        payload = await self.blobs.offload(f"payloads/{job.id}", job.payload)
        if payload is job.payload:
            return job
        assert isinstance(payload, dict)  # a reference
        return replace(job, payload=payload)

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
        job = await self._visible(principal, job_id)
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
        job = await self._visible(principal, job_id)
        now = self.clock()

        def decide(job: Job) -> tuple[Job, JobEvent]:
            new = job.retried(now)
            return new, JobEvent.of(new, JobEventKind.RETRYING, f"retried by {principal.subject}")

        new = await self._write(job_id, decide, current=job)
        if new.enqueued_at is None:
            await self._send(new)
        return new

    # -- worker side ----------------------------------------------------------------------
    async def claim(
        self, job_id: JobId, worker_id: str, lease_seconds: float, *, leased_from: datetime | None = None
    ) -> ClaimResult:
        """Decide what a delivered message means, and claim the job when it is to run.

        ``leased_from`` (when the queue was asked for the message) starts the lease where the message's
        invisibility started, so the lease never outlasts it: if the worker dies, its message must not
        reappear while the lease still holds, or the next worker drops it and the job never runs again.
        """
        decide, decision = self._claim_decider(worker_id, lease_seconds, leased_from)
        try:
            job = await self._write(job_id, decide)
        except JobNotFoundError:
            return ClaimResult(ClaimDecision.DROP, None)
        return _claim_result(decision[0], job, worker_id)

    async def receive_claims(
        self,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        worker_id: str,
        lease_seconds: float,
    ) -> ClaimedDeliveries:
        """Receive messages and claim their jobs in one transaction (``one_transaction`` stores only):
        ``queue.receive`` then ``claim`` for each, in one commit instead of two. Each message comes
        with its claim's result, or the error its claim raised; the messages' visibility and the
        leases are ``lease_seconds``, the leases counted from the call (as the worker's ``claim`` counts
        from when it asked the queue), so that none outlasts its message's invisibility."""
        store = self.one_transaction
        if store is None:
            raise TypeError("receive_claims needs a store that shares its transaction with the queue")
        decisions: dict[str, DecisionBox] = {}
        asked_at = self.clock()  # the messages are hidden from after this: the leases start here

        def decide_for(delivery: Delivery) -> Decide:
            decide, decisions[delivery.receipt] = self._claim_decider(worker_id, lease_seconds, asked_at)
            return decide

        taken = await store.receive_and_decide(
            self.queue, types, max_messages, wait_seconds, lease_seconds, decide_for
        )
        results: ClaimedDeliveries = []
        events: list[JobEvent] = []
        for delivery, outcome in taken:
            if isinstance(outcome, JobNotFoundError):
                results.append((delivery, ClaimResult(ClaimDecision.DROP, None)))
            elif isinstance(outcome, Exception):
                results.append((delivery, outcome))
            else:
                job, event = outcome
                if event is not None:
                    events.append(event)
                results.append((delivery, _claim_result(decisions[delivery.receipt][0], job, worker_id)))
        # The claims are committed: like the take (``take_then``), answer with them even if cancelled
        # now, or their jobs would wait for their leases to run out, an attempt lost.
        publishing = asyncio.ensure_future(self._publish_all(events))
        try:
            await asyncio.shield(publishing)
        except asyncio.CancelledError:
            await publishing
        return results

    async def _publish_all(self, events: Sequence[JobEvent]) -> None:
        for event in events:
            await self._publish(event)

    def _claim_decider(
        self, worker_id: str, lease_seconds: float, leased_from: datetime | None
    ) -> tuple[Decide, DecisionBox]:
        """The claim's ``decide``, and the list whose one item is what it decided last."""
        decision = [ClaimDecision.DROP]

        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            now = self.clock()
            decision[0] = job.decide_claim(now)
            if decision[0] is ClaimDecision.RUN:
                lease = lease_seconds
                if leased_from is not None:
                    lease = max(0.0, lease_seconds - (now - leased_from).total_seconds())
                new = job.claimed(worker_id, now, lease)
                if new.enqueued_at is None:
                    # A message brought it here, whatever the store says: a claim may read the job
                    # before its sender marked it sent, and write that back. Left unmarked, a job
                    # PENDING again (a retry, a give-back) would look never sent, and the sweeper
                    # would send it a second time.
                    new = replace(new, enqueued_at=now)
                message = f"attempt {new.attempts} of {new.max_attempts} on {worker_id}"
                return new, JobEvent.of(new, JobEventKind.STARTED, message)
            if decision[0] is ClaimDecision.CANCEL:
                new = job.cancelled(now)
                return new, JobEvent.of(new, JobEventKind.CANCELLED, "cancelled while its worker was lost")
            if decision[0] is ClaimDecision.FAIL:
                new = job.failed(
                    now, f"worker lost during the last attempt ({job.attempts} of {job.max_attempts})"
                )
                return new, JobEvent.of(new, JobEventKind.FAILED, new.error)
            return None

        return decide, decision

    async def heartbeat(self, claim: Claim, lease_seconds: float, current: Job | None = None) -> Job:
        """Extend the lease; the returned job tells whether cancellation was requested."""
        return await self._write(
            claim.job_id, lambda job: (job.heartbeat(claim, self.clock(), lease_seconds), None), current
        )

    async def progress(
        self, claim: Claim, percent: float, message: str | None, current: Job | None = None
    ) -> Job:
        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            new = job.with_progress(claim, self.clock(), percent, message)
            if new.progress == job.progress and new.progress_message == job.progress_message:
                return None
            return new, JobEvent.of(new, JobEventKind.PROGRESS, new.progress_message)

        return await self._write(claim.job_id, decide, current)

    async def log(self, claim: Claim, level: LogLevel, message: str, current: Job | None = None) -> Job:
        def decide(job: Job) -> tuple[Job, JobEvent]:
            job.check_claim(claim)
            new = job.logged(self.clock())
            return new, JobEvent.of(new, JobEventKind.LOG, message[:10_000], level)

        return await self._write(claim.job_id, decide, current)

    async def complete(
        self, claim: Claim, result: JSONValue, current: Job | None = None, *, ack: Delivery | None = None
    ) -> Job:
        """COMPLETED with ``result`` (a large one is stored as a blob first, the job refers to it);
        ``ack``: the message that brought the job, acknowledged with the write (see ``_write``)."""
        stored = await self.blobs.offload(f"results/{claim.job_id}/{claim.attempt}", result)

        def decide(job: Job) -> tuple[Job, JobEvent]:
            new = job.completed(claim, self.clock(), stored)
            return new, JobEvent.of(new, JobEventKind.COMPLETED)

        try:
            return await self._write(claim.job_id, decide, current, ack=ack)
        except (LeaseLostError, InvalidStateError, JobNotFoundError, ConflictError):
            # Definitely not written (an unavailable store may have written it: keep the blob then).
            await self.blobs.discard(stored, result)
            raise

    def backoff_seconds(self, attempt: int) -> float:
        """Exponential backoff with jitter: base·2^(attempt-1), scaled by 0.5–1.0, capped."""
        ceiling = min(
            self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2.0 ** (attempt - 1)
        )
        return ceiling * random.uniform(0.5, 1.0)

    async def fail_attempt(
        self,
        claim: Claim,
        error: str,
        *,
        retryable: bool = True,
        retry_delay: float | None = None,
        current: Job | None = None,
    ) -> Job:
        """End an attempt in failure: PENDING again after a backoff, or FAILED when none are left."""

        def decide(job: Job) -> tuple[Job, JobEvent]:
            job.check_claim(claim)
            now = self.clock()
            if retryable and job.attempts < job.max_attempts:
                delay = retry_delay if retry_delay is not None else self.backoff_seconds(job.attempts)
                delay = min(max(0.0, delay), self.settings.backoff_max_seconds)
                new = job.retry_scheduled(claim, now, error, delay)
                message = f"attempt {job.attempts} failed: {error}; retrying in {delay:.1f}s"
                return new, JobEvent.of(new, JobEventKind.RETRYING, message)
            new = job.failed(now, error)
            return new, JobEvent.of(new, JobEventKind.FAILED, error)

        return await self._write(claim.job_id, decide, current)

    async def finish_cancelled(
        self, claim: Claim, current: Job | None = None, *, ack: Delivery | None = None
    ) -> Job:
        """The worker stopped the handler because cancellation was requested (``ack``: as ``complete``)."""

        def decide(job: Job) -> tuple[Job, JobEvent]:
            job.check_claim(claim)
            new = job.cancelled(self.clock())
            return new, JobEvent.of(new, JobEventKind.CANCELLED, "handler stopped")

        return await self._write(claim.job_id, decide, current, ack=ack)

    async def release(self, claim: Claim, reason: str, current: Job | None = None) -> Job:
        """Give a job back unfinished (shutdown): PENDING, the interrupted attempt not counted."""

        def decide(job: Job) -> tuple[Job, JobEvent]:
            new = job.released(claim, self.clock())
            return new, JobEvent.of(new, JobEventKind.RETRYING, reason)

        return await self._write(claim.job_id, decide, current)

    async def expire_claim(self, job_id: JobId) -> Job | None:
        """End a claim whose lease ran out with no worker to notice (an external processor's):
        CANCELLED if asked, FAILED on the last attempt, else PENDING again at once, the attempt counted.

        Writes nothing while the lease is live; ``None`` if the job is gone.
        """

        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            now = self.clock()
            if job.status is not JobStatus.PROCESSING:
                return None
            decision, owner = job.decide_claim(now), job.lease_owner
            if decision is ClaimDecision.CANCEL:
                new = job.cancelled(now)
                return new, JobEvent.of(new, JobEventKind.CANCELLED, f"the claim of {owner} expired")
            if decision is ClaimDecision.FAIL:
                new = job.failed(now, f"the claim of {owner} expired on the last attempt ({job.attempts})")
                return new, JobEvent.of(new, JobEventKind.FAILED, new.error)
            if decision is ClaimDecision.RUN:
                new = job.retry_scheduled(
                    Claim(job.id, owner or "", job.attempts), now, f"the claim of {owner} expired", 0
                )
                message = f"attempt {job.attempts} ended: the claim of {owner} expired"
                return new, JobEvent.of(new, JobEventKind.RETRYING, message)
            return None

        try:
            return await self._write(job_id, decide)
        except JobNotFoundError:
            return None

    async def release_dead_owner(self, job_id: JobId, owner: str) -> Job | None:
        """End the claim of ``owner``, known dead (its process is gone), without waiting for the lease:
        like ``expire_claim``, the attempt counted, the job queued again at once. ``None`` if gone."""

        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            now = self.clock()
            if job.status is not JobStatus.PROCESSING or job.lease_owner != owner:
                return None
            if job.cancel_requested:
                new = job.cancelled(now)
                return new, JobEvent.of(new, JobEventKind.CANCELLED, f"{owner} died; cancelled as asked")
            if job.attempts >= job.max_attempts:
                new = job.failed(now, f"{owner} died during the last attempt ({job.attempts})")
                return new, JobEvent.of(new, JobEventKind.FAILED, new.error)
            claim = Claim(job.id, owner, job.attempts)
            new = replace(job.retry_scheduled(claim, now, f"{owner} died", 0), enqueued_at=None)
            return new, JobEvent.of(new, JobEventKind.RETRYING, f"attempt {job.attempts} ended: {owner} died")

        try:
            return await self._write(job_id, decide)
        except JobNotFoundError:
            return None

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
