"""The three ports every backend implements: ``JobStore``, ``JobQueue`` and ``EventBus``.

They speak domain types only. Each has an embedded adapter (SQLite, in-process) and a
production adapter (MongoDB, SQS, Redis) under ``core.backends``; ``tests/contracts`` runs the
same suite against all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias

from core.cursors import EventCursor, JobCursor
from core.models import Job, JobEvent, JobId, JobStatus

__all__ = [
    "ALL_EVENTS",
    "CONTROL",
    "BusMessage",
    "BusSubscription",
    "CancelRequested",
    "ControlMessage",
    "ControlsChanged",
    "Decide",
    "Delivery",
    "EventBus",
    "JobFilter",
    "JobQueue",
    "JobStore",
    "QueueDepth",
    "QueueRecords",
    "Resync",
    "StoreStats",
    "TransactionalStore",
    "TypeCounts",
    "job_topic",
    "owner_topic",
]


# -- store -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a listing returns; ``None`` means no condition."""

    statuses: frozenset[JobStatus] | None = None
    type: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    schedule_id: str | None = None
    flow_id: str | None = None


@dataclass(frozen=True, slots=True)
class TypeCounts:
    """Jobs of one type by status, and the summed run time of the completed ones."""

    by_status: dict[JobStatus, int] = field(default_factory=dict)
    completed_seconds_total: float = 0.0


@dataclass(frozen=True, slots=True)
class StoreStats:
    by_type: dict[str, TypeCounts]


class JobStore(Protocol):
    """Durable jobs and their events. Every change is a conditional write on the version."""

    async def ping(self) -> None:
        """Raise ``BackendUnavailableError`` unless the store answers."""

    async def close(self) -> None: ...

    async def insert(self, job: Job, event: JobEvent, idempotency_since: datetime) -> tuple[Job, bool]:
        """Store a new job and its CREATED event, or return the job an earlier submission with the
        same owner and idempotency key made since ``idempotency_since`` (then ``False``).

        The same for every adapter: the answer is the job as stored, and its ``enqueued_at`` says
        whether its message exists. The caller sends the message of a created job whose
        ``enqueued_at`` is ``None``, and of no other. A store given its queue (a
        ``TransactionalStore``: ``Backends.transaction``) enqueues in the insert's transaction and
        answers with ``enqueued_at`` set; any other store leaves it as given.
        """

    async def insert_many(
        self, items: Sequence[tuple[Job, JobEvent]], idempotency_since: datetime
    ) -> list[tuple[Job, bool]]:
        """``insert`` of each (job, CREATED event) in order, as one write: one answer per item.

        Exactly what ``insert`` one after the other would answer: an item whose owner and
        idempotency key an earlier item of the same call (or a stored job since
        ``idempotency_since``) already holds gets that job and ``False``. Either every item is
        answered or the call raises (a failed store call may still have written some of them).
        """

    async def get(self, job_id: JobId) -> Job | None: ...

    async def get_many(self, job_ids: Sequence[JobId]) -> dict[JobId, Job]: ...

    async def update(self, job: Job, expected_version: int, event: JobEvent | None) -> Job | None:
        """Write ``job`` if the stored one still has ``expected_version``; append ``event`` with it.

        Returns the job as written, or ``None`` when someone else wrote first. The payload is
        never rewritten. As for ``insert``, ``enqueued_at`` of the answer says whether the job's
        message exists: a ``TransactionalStore`` enqueues a PENDING job with none in the same
        transaction; any other store writes ``enqueued_at`` as given.
        """

    async def mark_enqueued(self, job_id: JobId, at: datetime) -> None:
        """Record that a PENDING job's message was sent (bookkeeping: no version, no event)."""

    async def list_jobs(self, filter: JobFilter, first: int, after: JobCursor | None) -> list[Job]:
        """Up to ``first`` jobs, newest first (createdAt, then id), strictly after ``after``."""

    async def count_jobs(self, filter: JobFilter) -> int: ...

    async def list_events(
        self,
        *,
        after: EventCursor | None,
        limit: int,
        job_id: JobId | None = None,
        type: str | None = None,
        owner: str | None = None,
    ) -> list[JobEvent]:
        """Stored events in cursor order, strictly after ``after``."""

    async def list_logs(self, job_id: JobId, last: int) -> list[JobEvent]:
        """The newest ``last`` LOG events of a job, oldest first."""

    async def stats(self) -> StoreStats: ...

    async def find_unenqueued(
        self, *, updated_before: datetime, run_before: datetime, limit: int
    ) -> list[Job]:
        """PENDING jobs with no message sent, last written before ``updated_before``, due before
        ``run_before`` (or with no ``run_at``): what the sweeper must send."""


# -- queue -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received message: it names a job; the receipt lets the receiver ack or hide it."""

    job_id: JobId
    type: str
    receipt: str
    receive_count: int = 1


@dataclass(frozen=True, slots=True)
class QueueDepth:
    ready: int = 0  # visible now
    in_flight: int = 0  # received, not yet acknowledged
    delayed: int = 0  # not visible until later
    dead: int = 0  # in the dead-letter queue
    oldest_age_seconds: float = 0.0  # how long the oldest waiting message has waited (0: none)

    @property
    def waiting(self) -> int:
        return self.ready + self.delayed


class JobQueue(Protocol):
    """One queue per job type, each with a dead-letter queue. Messages carry the job id only."""

    #: the longest delay ``send`` accepts; later jobs wait in the store for the sweeper.
    max_delay_seconds: float

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_queues(self, types: Sequence[str]) -> None:
        """Create (or only verify, when so configured) the queues of these job types."""

    async def send(self, job: Job, delay_seconds: float = 0.0) -> None:
        """Enqueue a message for ``job`` (delay at most ``max_delay_seconds``)."""

    async def receive(
        self, types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        """Up to ``max_messages`` visible messages, hidden for ``visibility_seconds``; waits up to
        ``wait_seconds`` for the first. Malformed messages are dropped here, never returned."""

    async def ack(self, delivery: Delivery) -> None:
        """Delete the message: its job needs nothing more from this queue."""

    async def release(self, delivery: Delivery, delay_seconds: float) -> None:
        """Make the message visible again after ``delay_seconds`` (retry backoff, redelivery)."""

    async def extend(self, delivery: Delivery, visibility_seconds: float) -> None:
        """Keep the message hidden for ``visibility_seconds`` more (the heartbeat)."""

    async def dead_letter(self, delivery: Delivery) -> None:
        """Move the message to its type's dead-letter queue."""

    async def redrive_dead_letters(self, type: str) -> list[JobId]:
        """Take every message out of ``type``'s dead-letter queue; return the job ids."""

    async def depths(self, types: Sequence[str]) -> dict[str, QueueDepth]: ...


class QueueRecords(Protocol):
    """A queue capability: messages an event source received for us (an AWS Lambda SQS mapping)
    made into ``Delivery``s, to be settled through the queue as its own receives are."""

    #: messages dropped because their body was not a jobpulse message
    malformed_count: int

    async def delivery_from(
        self, queue_name: str, body: str, receipt_handle: str, receive_count: int = 1
    ) -> Delivery | None:
        """The message as a ``Delivery``; ``None`` for a malformed body (deleted, logged, counted).
        Raises ``ConfigurationError`` for a queue that is not one of this queue's job queues."""


# -- capability: store and queue in one database ----------------------------------------------

#: what a write decides from the job it read: the next job and its event, or ``None`` (no write)
Decide: TypeAlias = Callable[[Job], tuple[Job, JobEvent | None] | None]


class TransactionalStore(Protocol):
    """A store capability, present when the queue lives in the store's database (SQLite).

    Read, decide and write a job in one transaction, and delete the job's message in it too: one
    commit where the ports alone need a read, a write and an ack (and no conflict can come between
    the read and the write). ``open_backends`` says whether the backends have it
    (``Backends.transaction``); the service uses it when given it, and the ports otherwise.
    """

    async def decide_and_update(
        self, job_id: JobId, decide: Decide, current: Job | None, ack: Delivery | None
    ) -> tuple[Job, JobEvent | None]:
        """Apply ``decide`` to the job (``current`` if still the stored version, else as read) and
        write the outcome conditionally on the version, with its event; then delete ``ack``'s message
        if given. Returns the job as written (or as read, when ``decide`` wrote nothing) and the event.
        Raises ``JobNotFoundError`` if there is no such job, and whatever ``decide`` raises (nothing
        is written then). ``decide`` runs on the store's writer thread: it must be quick and pure."""

    async def receive_and_decide(
        self,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        visibility_seconds: float,
        decide_for: Callable[[Delivery], Decide],
    ) -> list[tuple[Delivery, tuple[Job, JobEvent | None] | Exception]]:
        """``JobQueue.receive`` on the store's queue, and for each message ``decide_and_update`` of
        its job with ``decide_for(delivery)`` in the same transaction. Each message gets its outcome,
        or the exception its job's write raised (its message stays taken, as a plain receive's would).
        """


# -- bus ---------------------------------------------------------------------------------------

CONTROL = "control"
ALL_EVENTS = "all"


def job_topic(job_id: JobId) -> str:
    return f"job:{job_id}"


def owner_topic(owner: str) -> str:
    return f"owner:{owner}"


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """Control message: the worker holding ``job_id`` must stop its handler."""

    job_id: JobId


@dataclass(frozen=True, slots=True)
class Resync:
    """Some messages may have been missed (bus reconnected, or the subscriber fell behind):
    re-read the store from the last cursor."""

    reason: str


@dataclass(frozen=True, slots=True)
class ControlsChanged:
    """Control message: a job type's flow control record changed (paused, resumed, limits set)."""

    type: str


ControlMessage: TypeAlias = CancelRequested | ControlsChanged
BusMessage: TypeAlias = JobEvent | CancelRequested | ControlsChanged | Resync


class BusSubscription(Protocol):
    """Messages of the subscribed topics, buffered from the moment ``subscribe`` returned."""

    def __aiter__(self) -> AsyncIterator[BusMessage]: ...


class EventBus(Protocol):
    """Publishes job events (to their job, owner and ``ALL_EVENTS`` topics) and control messages.

    The store is the truth and the bus a hint: a subscriber that gets ``Resync`` re-reads.
    """

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: JobEvent) -> None: ...

    async def publish_control(self, message: ControlMessage) -> None: ...

    def subscribe(self, topics: Sequence[str]) -> AbstractAsyncContextManager[BusSubscription]:
        """Subscribe; on entry the subscription is live (no later message is missed)."""
