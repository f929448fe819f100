"""``WorkerSide``: what workers (and external processors) do to a job — take it (``claim``,
``receive_claims``), report on it (heartbeat, progress, log) and end the attempt (complete, fail,
cancelled, given back, expired). Part of ``JobService`` (``core.service``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias

from core.errors import (
    ConflictError,
    InvalidStateError,
    JobNotFoundError,
    LeaseLostError,
)
from core.flow_control import HeldError
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
)
from core.ports import Decide, Delivery, TransactionalStore
from core.write_path import MessageFate, WritePath, shielded

if TYPE_CHECKING:
    from core.controls import FlowControl

__all__ = ["RENEW_AFTER_RECEIVES", "ClaimResult", "ClaimedDeliveries", "WorkerSide"]

#: a message held back this often is replaced by a fresh one (SQS dead-letters at 1000 receives)
RENEW_AFTER_RECEIVES = 50


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a worker got for a message: run ``job`` under ``claim``, or only act on ``decision``."""

    decision: ClaimDecision
    job: Job | None
    claim: Claim | None = None


#: each received message with its claim's result, or the error its claim raised
ClaimedDeliveries: TypeAlias = list[tuple[Delivery, "ClaimResult | Exception"]]
#: what a claim's ``decide`` decided (last), in a one-item list it rewrites
DecisionBox: TypeAlias = list[ClaimDecision]


def _claim_result(decision: ClaimDecision, job: Job, worker_id: str) -> ClaimResult:
    if decision is ClaimDecision.RUN:
        return ClaimResult(decision, job, Claim(job.id, worker_id, job.attempts))
    return ClaimResult(decision, job)


class WorkerSide(WritePath):
    """The worker's writes: claim, report, finish."""

    async def claim(
        self, job_id: JobId, worker_id: str, lease_seconds: float, *, leased_from: datetime | None = None
    ) -> ClaimResult:
        """Decide what a delivered message means, and claim the job when it is to run.

        ``leased_from`` (when the queue was asked for the message) starts the lease where the message's
        invisibility started, so the lease never outlasts it: if the worker dies, its message must not
        reappear while the lease still holds, or the next worker drops it and the job never runs again.
        """
        controls = self.controls
        try:
            if controls is not None and not controls.store.in_claim:
                return await self._claim_limited(controls, job_id, worker_id, lease_seconds, leased_from)
            decide, decision = self._claim_decider(worker_id, lease_seconds, leased_from)
            job = await self._write(job_id, decide)
        except JobNotFoundError:
            return ClaimResult(ClaimDecision.DROP, None)
        return _claim_result(decision[0], job, worker_id)

    async def _claim_limited(
        self,
        controls: FlowControl,
        job_id: JobId,
        worker_id: str,
        lease_seconds: float,
        leased_from: datetime | None,
    ) -> ClaimResult:
        """``claim`` where the store does not hold limits in the claim's write: take the job's slots
        and token first (``HeldError`` if there are none), then claim; give them back if it did not run.
        The claim is dated when they were taken: a start counts against a rate when it is admitted.
        """
        job = await self.store.get(job_id)
        if job is None:
            return ClaimResult(ClaimDecision.DROP, None)
        now, wall = self.clock(), time.time()
        took, token_at = False, None
        if job.decide_claim(now) is ClaimDecision.RUN:
            lease = self._claim_lease(job, lease_seconds, leased_from, now)
            took, token_at = await controls.take(job, now + timedelta(seconds=lease), now)
        # Dated as they were given: a rate token at the moment the limiter counted it (on this
        # service's clock), slots when taken; not when the write lands, a round trip or more later.
        admitted = None
        if token_at is not None:
            admitted = now + timedelta(seconds=token_at - wall)
        elif took:
            admitted = self.clock()
        decide, decision = self._claim_decider(worker_id, lease_seconds, leased_from, at=admitted)
        try:
            written = await self._write(job_id, decide, current=job)
        except BaseException:
            if took:
                await shielded(asyncio.ensure_future(controls.give_back(job_id)))
            raise
        if took and decision[0] is not ClaimDecision.RUN:
            await controls.give_back(job_id)
        return _claim_result(decision[0], written, worker_id)

    async def hold_back(self, delivery: Delivery, held: HeldError) -> None:
        """A claim held back by its type's limits: nothing was written (the attempt is not counted);
        the message comes back after the delay the limit named, with a little jitter."""
        if self.controls is not None:
            self.controls.note_held(delivery.type, held.reason)
        delay = held.retry_after * random.uniform(1.0, 1.25)
        if delivery.receive_count >= RENEW_AFTER_RECEIVES:
            # Held often: a fresh message, before SQS's receive count dead-letters this one. The new
            # message first: a crash in between leaves a harmless duplicate, never none.
            job = await self.store.get(delivery.job_id)
            if job is not None:
                await self.queue.send(job, min(delay, self.queue.max_delay_seconds))
                await self.settle(delivery, MessageFate.ACK)
                return
        await self.settle(delivery, MessageFate.RELEASE, delay)

    async def receive_claims(
        self,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        worker_id: str,
        lease_seconds: float,
    ) -> ClaimedDeliveries:
        """Receive messages and ``claim`` their jobs: the one way a worker takes work, on every backend.

        Each message comes with its claim's result, or the error its claim raised; the messages'
        visibility and the leases are ``lease_seconds``, the leases counted from the call, so that
        none outlasts its message's invisibility. With a ``transaction`` the take and the claims
        are one commit; otherwise a receive, then the claims side by side. Once messages are taken,
        a cancelled call still claims them and answers, or their jobs would wait for their leases
        to run out, an attempt lost.
        """
        asked_at = self.clock()  # the messages are hidden from after this: the leases start here
        if self.transaction is not None:
            return await self._receive_claims_in_one(
                self.transaction, types, max_messages, wait_seconds, worker_id, lease_seconds, asked_at
            )
        deliveries = await self.queue.receive(types, max_messages, wait_seconds, lease_seconds)
        if not deliveries:
            return []
        return await shielded(
            asyncio.ensure_future(self._claim_each(deliveries, worker_id, lease_seconds, asked_at))
        )

    async def _claim_each(
        self, deliveries: Sequence[Delivery], worker_id: str, lease_seconds: float, asked_at: datetime
    ) -> ClaimedDeliveries:
        """``claim`` each message's job, side by side (each a round trip on a distributed store)."""

        async def one(delivery: Delivery) -> tuple[Delivery, ClaimResult | Exception]:
            try:
                claimed = await self.claim(delivery.job_id, worker_id, lease_seconds, leased_from=asked_at)
            except Exception as exc:  # the worker handles it as if it had claimed the job itself
                return delivery, exc
            return delivery, claimed

        if len(deliveries) == 1:
            return [await one(deliveries[0])]
        return list(await asyncio.gather(*(one(delivery) for delivery in deliveries)))

    async def _receive_claims_in_one(
        self,
        store: TransactionalStore,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        worker_id: str,
        lease_seconds: float,
        asked_at: datetime,
    ) -> ClaimedDeliveries:
        """``receive_claims`` in one transaction: the take and the claims commit together."""
        decisions: dict[str, DecisionBox] = {}

        def decide_for(delivery: Delivery) -> Decide:
            decide, decisions[delivery.receipt] = self._claim_decider(worker_id, lease_seconds, asked_at)
            return decide

        taken = await store.receive_and_decide(types, max_messages, wait_seconds, lease_seconds, decide_for)
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
        await shielded(asyncio.ensure_future(self._publish_all(events)))
        return results

    def _claim_lease(
        self, job: Job, lease_seconds: float, leased_from: datetime | None, now: datetime
    ) -> float:
        """How long a claim made ``now`` holds. A worker's claim of a delivered message (``leased_from``
        given: when the queue was asked) holds ``lease_seconds`` from then, and never longer than the
        job type's own lease: a worker that dies before its first heartbeat then holds the job, and
        the slots its claim took, no longer than its type's lease (a 3 s type is free again in 3 s,
        not in the queue's 30). Any other claim (an external worker's) holds what it asked for."""
        if leased_from is None:
            return lease_seconds
        lease = max(0.0, lease_seconds - (now - leased_from).total_seconds())
        if job.type in self.registry:
            lease = min(lease, self.registry.get(job.type).lease_for(self.settings))
        return lease

    def _claim_decider(
        self, worker_id: str, lease_seconds: float, leased_from: datetime | None, at: datetime | None = None
    ) -> tuple[Decide, DecisionBox]:
        """The claim's ``decide`` (deciding as of ``at``, else of when it runs), and the list whose
        one item is what it decided last."""
        decision = [ClaimDecision.DROP]

        def decide(job: Job) -> tuple[Job, JobEvent] | None:
            now = at or self.clock()
            decision[0] = job.decide_claim(now)
            if decision[0] is ClaimDecision.RUN:
                new = job.claimed(worker_id, now, self._claim_lease(job, lease_seconds, leased_from, now))
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
                why = "expired" if new.error == "expired" else "cancelled while its worker was lost"
                return new, JobEvent.of(new, JobEventKind.CANCELLED, why)
            if decision[0] is ClaimDecision.FAIL:
                new = job.failed(
                    now, f"worker lost during the last attempt ({job.attempts} of {job.max_attempts})"
                )
                return new, JobEvent.of(new, JobEventKind.FAILED, new.error)
            return None

        return decide, decision

    async def heartbeat(self, claim: Claim, lease_seconds: float, current: Job | None = None) -> Job:
        """Extend the lease (and the slots its claim took); the returned job tells whether
        cancellation was requested."""
        job = await self._write(
            claim.job_id, lambda job: (job.heartbeat(claim, self.clock(), lease_seconds), None), current
        )
        if self.controls is not None and job.lease_until is not None and self.controls.may_hold(job):
            await self.controls.extend(job.id, job.lease_until)
        return job

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
        self,
        claim: Claim,
        result: JSONValue,
        current: Job | None = None,
        *,
        ack: Delivery | None = None,
        progress_message: str | None = None,
    ) -> Job:
        """COMPLETED with ``result`` (a large one is stored as a blob first, the job refers to it);
        ``ack``: the message that brought the job, acknowledged with the write (see ``_write``);
        ``progress_message``: a last progress report not written on its own, carried by this write."""
        stored = await self.blobs.offload(f"results/{claim.job_id}/{claim.attempt}", result)

        def decide(job: Job) -> tuple[Job, JobEvent]:
            new = job.completed(claim, self.clock(), stored, progress_message)
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
