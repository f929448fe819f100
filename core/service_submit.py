"""``SubmitSide``: how jobs come in — ``submit`` (concurrent calls stored together) and
``submit_many`` (one write for a batch). Part of ``JobService`` (``core.service``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from core.blobs import BlobStore
from core.errors import ConflictError, UserFacingError, ValidationError
from core.group_commit import GroupCommit
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobEvent, Principal, utcnow
from core.ports import EventBus, JobQueue, JobStore, TransactionalStore
from core.settings import Settings
from core.submission import SubmitRequest, created_event, new_job, new_job_ids, next_job_id
from core.write_path import WritePath

__all__ = ["SubmitSide"]


class SubmitSide(WritePath):
    """Submission: create jobs (or answer with the ones their idempotency keys made) and send them."""

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
    ) -> None:
        super().__init__(
            store, queue, bus, registry, settings, clock=clock, blobs=blobs, transaction=transaction
        )
        #: concurrent ``submit``s' store writes, coalesced into one ``insert_many``
        self._inserts: GroupCommit[None, tuple[Job, JobEvent, datetime], tuple[Job, bool]] = GroupCommit(
            self._insert_batch, settings.max_batch_size
        )

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
