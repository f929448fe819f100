"""``WritePath``: the one way a job changes — a conditional write, then its event — and the one place
a worker's message is settled (``settle``).

A write reads the job, asks the state machine (``core.models``) for the next version, and writes
it on condition that the stored version is still the one read. Losing that race means someone
else changed the job: read again and decide again. The event is stored with the write and then
published on the bus (a hint for live subscribers; the store is the truth). ``JobService``
(``core.service``) is built on it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import structlog

from core.blobs import BlobStore, LargeValues
from core.errors import BackendUnavailableError, ConflictError, JobNotFoundError
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobEvent, JobEventKind, JobId, JobStatus, utcnow
from core.ports import Delivery, EventBus, JobQueue, JobStore, TransactionalStore
from core.settings import Settings

__all__ = [
    "MAX_CONFLICT_RETRIES",
    "MAX_RELEASE_SECONDS",
    "EventListener",
    "MessageFate",
    "WritePath",
    "release_delay",
    "shielded",
]

if TYPE_CHECKING:
    from core.controls import FlowControl
    from core.flows import Flows

log = structlog.get_logger("jobpulse.service")

#: the events of a write that ends a job
_FINISHING = frozenset({JobEventKind.COMPLETED, JobEventKind.FAILED, JobEventKind.CANCELLED})
#: the events of a write that may end an attempt (and free the slots its claim took)
_ENDING_ATTEMPT = _FINISHING | {JobEventKind.RETRYING}

T = TypeVar("T")

MAX_CONFLICT_RETRIES = 20
# SQS keeps a received message hidden for at most 12 hours; longer waits are re-hidden on redelivery.
MAX_RELEASE_SECONDS = 12 * 3600 - 60

EventListener = Callable[[JobEvent], None]


class MessageFate(enum.Enum):
    """What becomes of a worker's message once its job says what it needs."""

    ACK = "ack"  # deleted: the job needs nothing more from the queue
    RELEASE = "release"  # visible again at a given time (at once when none is given)
    DEAD_LETTER = "dead letter"  # moved to its type's dead-letter queue (the job FAILED)


def release_delay(when: datetime | None, now: datetime) -> float:
    """How long from ``now`` until ``when``, as a message delay (0 to ``MAX_RELEASE_SECONDS``)."""
    if when is None:
        return 0.0
    return min(MAX_RELEASE_SECONDS, max(0.0, (when - now).total_seconds()))


class WritePath:
    """The backends, and the write every change of a job goes through."""

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
        self.store = store
        self.queue = queue
        self.bus = bus
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.listeners: list[EventListener] = []
        #: dependencies and flows (``core.flows``, set by ``JobService``); ``None``: none kept
        self.flows: Flows | None = None
        #: flow control: pause, concurrency and rate limits by type (``core.controls``, set by
        #: ``JobService``); ``None``: no limits kept
        self.controls: FlowControl | None = None
        #: the store, when it reads, decides, writes and acks in one transaction (``Backends.transaction``)
        self.transaction = transaction
        #: large payloads and results kept in ``blobs`` (references in the job); see core/blobs.py
        self.blobs = LargeValues(
            blobs,
            threshold_bytes=settings.s3_threshold_bytes,
            inline_max_bytes=settings.s3_inline_max_bytes,
            presign_seconds=settings.s3_presign_seconds,
            cache_bytes=settings.s3_cache_bytes,
        )

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
        if (
            self.controls is not None
            and event.kind in _ENDING_ATTEMPT
            and event.job.status is not JobStatus.PROCESSING
            and self.controls.may_hold(event.job)
        ):
            try:
                await self.controls.give_back(event.job_id)  # its slots (DESIGN.md §8)
            except Exception as exc:  # the slots expire with the lease
                log.warning("slots not given back; they expire", job_id=event.job_id, error=repr(exc))
        if self.flows is not None and event.kind in _FINISHING and event.job.is_terminal:
            try:
                await self.flows.finished(event.job)  # release its dependents (DESIGN.md §6)
            except BackendUnavailableError as exc:
                # The finishing write is committed; the sweeper releases the dependents later.
                log.warning("dependents not released", job_id=event.job_id, error=str(exc))

    async def _publish_all(self, events: Sequence[JobEvent]) -> None:
        for event in events:
            await self._publish(event)

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
        With a ``transaction``, all of it is one transaction: one commit, no read through the
        reader pool and no conflict to retry, where the ports alone take a read, a write and an ack.
        """
        if self.transaction is not None:
            job, event = await self.transaction.decide_and_update(job_id, decide, current, ack)
            if event is not None:
                await self._publish(event)
            return job
        job = await self._write_read_then_update(job_id, decide, current)
        if ack is not None:
            await self.settle(ack, MessageFate.ACK)
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

    async def settle(self, delivery: Delivery, fate: MessageFate, delay_seconds: float = 0.0) -> None:
        """Settle a worker's message: the one place messages are acknowledged, released (visible
        again after ``delay_seconds``) or dead-lettered. A write that can ack in its own transaction
        takes ``ack=`` instead (``_write``), and settles here when the store cannot."""
        if fate is MessageFate.ACK:
            await self.queue.ack(delivery)
        elif fate is MessageFate.DEAD_LETTER:
            await self.queue.dead_letter(delivery)
        else:
            await self.queue.release(delivery, delay_seconds)


async def shielded(work: asyncio.Future[T]) -> T:
    """Await ``work`` to its end even if cancelled meanwhile (then answer with it all the same)."""
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        return await work
