"""Jobs, job events and the state machine: the only place where transitions are decided.

Every function here is pure: it takes a job as read from the store and returns the job as it
must be written (``version + 1``), or raises ``InvalidStateError`` / ``LeaseLostError``.
``JobService`` turns each result into one conditional write.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from core.errors import InvalidStateError, LeaseLostError

__all__ = [
    "TERMINAL_STATUSES",
    "Claim",
    "ClaimDecision",
    "DependencyFailure",
    "JSONObject",
    "JSONValue",
    "Job",
    "JobEvent",
    "JobEventKind",
    "JobId",
    "JobStatus",
    "LogLevel",
    "Principal",
    "new_job_id",
    "utcnow",
]

JSONValue: TypeAlias = "None | bool | int | float | str | list[JSONValue] | dict[str, JSONValue]"
JSONObject: TypeAlias = "dict[str, JSONValue]"
JobId: TypeAlias = str


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: on no queue yet: it waits for its dependencies (``waiting_for``), then becomes PENDING
    WAITING = "WAITING"


class DependencyFailure(enum.StrEnum):
    """What a dependent does when a dependency ends FAILED or CANCELLED."""

    FAIL = "FAIL"  # it ends FAILED too ("dependency <id> <STATUS>"), and so on down the graph
    RUN = "RUN"  # it runs anyway


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobEventKind(enum.StrEnum):
    CREATED = "CREATED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    LOG = "LOG"
    RETRYING = "RETRYING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def utcnow() -> datetime:
    """Now, in UTC, to the microsecond."""
    return datetime.now(UTC)


def new_job_id() -> JobId:
    """A UUIDv7-style id: time-ordered, so ids sort roughly by creation (RFC 9562 layout)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFFFFFFFFFF) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. ``payload`` is ``None`` only in event snapshots, which never carry it."""

    id: JobId
    type: str
    owner: str
    payload: JSONObject | None
    status: JobStatus = JobStatus.PENDING
    version: int = 1
    priority: int = 0
    max_attempts: int = 3
    timeout_seconds: int = 300
    attempts: int = 0
    progress: float = 0.0
    progress_message: str | None = None
    result: JSONValue = None
    error: str | None = None
    idempotency_key: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    run_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Bookkeeping the API does not show.
    cancel_requested: bool = False
    lease_owner: str | None = None
    lease_until: datetime | None = None
    enqueued_at: datetime | None = None
    # Workflows (DESIGN.md §6): the jobs it depends on, those it still waits for, and its policy.
    depends_on: tuple[JobId, ...] = ()
    waiting_for: tuple[JobId, ...] = ()
    on_dependency_failure: DependencyFailure = DependencyFailure.FAIL
    flow_id: str | None = None
    #: ``expiresInSeconds``: it must start within this long of becoming due, else CANCELLED "expired"
    expires_in_seconds: int | None = None
    expires_at: datetime | None = None
    #: the schedule that submitted it (v2, DESIGN.md §7)
    schedule_id: str | None = None
    #: jobs of one type with the same key run at most ``concurrencyPerKey`` at once (DESIGN.md §8)
    concurrency_key: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def without_payload(self) -> Job:
        """This job as events carry it: the payload is immutable and read from the job itself."""
        return replace(self, payload=None)

    # -- transitions ------------------------------------------------------------------------
    def _next(self, now: datetime, **changes: object) -> Job:
        return replace(self, version=self.version + 1, updated_at=now, **changes)  # type: ignore[arg-type]

    def decide_claim(self, now: datetime) -> ClaimDecision:
        """What a worker holding a message for this job must do with it."""
        if self.status is JobStatus.PENDING:
            if self.cancel_requested:
                # Asked to stop while its last attempt was failing or being released.
                return ClaimDecision.CANCEL
            if self.run_at is not None and self.run_at > now:
                return ClaimDecision.NOT_YET
            if self.is_expired(now):
                return ClaimDecision.CANCEL
            return ClaimDecision.RUN
        if self.status is JobStatus.PROCESSING and self.lease_until is not None and self.lease_until <= now:
            # The previous worker died (or stalled) holding the lease.
            if self.cancel_requested:
                return ClaimDecision.CANCEL
            if self.attempts >= self.max_attempts:
                return ClaimDecision.FAIL
            return ClaimDecision.RUN
        return ClaimDecision.DROP

    def is_expired(self, now: datetime) -> bool:
        """Never started, and its ``expires_at`` has passed (``expiresInSeconds``)."""
        return self.attempts == 0 and self.expires_at is not None and self.expires_at <= now

    def claimed(self, worker_id: str, now: datetime, lease_seconds: float) -> Job:
        """PENDING (or PROCESSING with an expired lease) → PROCESSING under ``worker_id``."""
        if self.decide_claim(now) is not ClaimDecision.RUN:
            raise InvalidStateError(f"job {self.id} is not claimable ({self.status})")
        return self._next(
            now,
            status=JobStatus.PROCESSING,
            attempts=self.attempts + 1,
            lease_owner=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
            started_at=now,
            run_at=None,
            progress=0.0,
            progress_message=None,
        )

    def check_claim(self, claim: Claim) -> None:
        """Raise ``LeaseLostError`` unless ``claim`` is this job's current claim."""
        if (
            self.status is not JobStatus.PROCESSING
            or self.lease_owner != claim.worker_id
            or self.attempts != claim.attempt
        ):
            raise LeaseLostError(
                f"job {self.id}: claim of {claim.worker_id}#{claim.attempt} is no longer held"
            )

    def heartbeat(self, claim: Claim, now: datetime, lease_seconds: float) -> Job:
        """Extend the lease. Bumps the version so a racing claim of the old lease must fail."""
        self.check_claim(claim)
        return self._next(now, lease_until=now + timedelta(seconds=lease_seconds))

    def with_progress(self, claim: Claim, now: datetime, percent: float, message: str | None) -> Job:
        """Record progress; it never goes backwards within an attempt."""
        self.check_claim(claim)
        percent = min(100.0, max(0.0, float(percent)))
        return self._next(
            now,
            progress=max(self.progress, percent),
            progress_message=message if message is not None else self.progress_message,
        )

    def logged(self, now: datetime) -> Job:
        """A log line changes nothing but the version: the line itself is the event."""
        return self._next(now)

    def completed(
        self, claim: Claim, now: datetime, result: JSONValue, progress_message: str | None = None
    ) -> Job:
        """COMPLETED at 100%, with the last progress message reported (``progress_message`` if given)."""
        self.check_claim(claim)
        return self._next(
            now,
            status=JobStatus.COMPLETED,
            result=result,
            progress=100.0,
            progress_message=progress_message if progress_message is not None else self.progress_message,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
            run_at=None,
        )

    def failed(self, now: datetime, error: str) -> Job:
        """Terminal failure (attempts exhausted, non-retryable error, lease lost on the last attempt)."""
        if self.is_terminal:
            raise InvalidStateError(f"job {self.id} is already {self.status}")
        return self._next(
            now,
            status=JobStatus.FAILED,
            error=error,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
            run_at=None,
        )

    def retry_scheduled(self, claim: Claim, now: datetime, error: str, delay_seconds: float) -> Job:
        """A failed attempt with attempts left goes back to PENDING until ``run_at``."""
        self.check_claim(claim)
        return self._next(
            now,
            status=JobStatus.PENDING,
            error=error,
            lease_owner=None,
            lease_until=None,
            run_at=now + timedelta(seconds=delay_seconds),
        )

    def released(self, claim: Claim, now: datetime) -> Job:
        """Give the job back without counting the interrupted attempt (graceful shutdown)."""
        self.check_claim(claim)
        return self._next(
            now,
            status=JobStatus.PENDING,
            attempts=max(0, self.attempts - 1),
            lease_owner=None,
            lease_until=None,
            run_at=None,
        )

    def cancel_requested_now(self, now: datetime) -> Job:
        """PROCESSING: ask the worker holding the lease to stop."""
        if self.status is not JobStatus.PROCESSING:
            raise InvalidStateError(f"job {self.id} is {self.status}, not PROCESSING")
        return self._next(now, cancel_requested=True)

    def cancelled(self, now: datetime) -> Job:
        """WAITING, PENDING (or PROCESSING whose worker stopped the handler) → CANCELLED.

        A job that was never started and whose ``expires_at`` has passed is cancelled "expired".
        """
        if self.is_terminal:
            raise InvalidStateError(
                f"job {self.id} is already {self.status}; only unfinished jobs can be cancelled"
            )
        return self._next(
            now,
            status=JobStatus.CANCELLED,
            error="expired" if self.status is JobStatus.PENDING and self.is_expired(now) else self.error,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
            run_at=None,
        )

    def retried(self, now: datetime) -> Job:
        """FAILED or CANCELLED → PENDING, attempts reset; the next message runs it afresh."""
        if self.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise InvalidStateError(
                f"job {self.id} is {self.status}; only FAILED or CANCELLED jobs can be retried"
            )
        return self._next(
            now,
            status=JobStatus.PENDING,
            attempts=0,
            progress=0.0,
            progress_message=None,
            result=None,
            run_at=None,
            started_at=None,
            completed_at=None,
            cancel_requested=False,
            enqueued_at=None,
            expires_at=self._expiry(now),
        )

    # -- dependencies (DESIGN.md §6) ----------------------------------------------------------
    def _expiry(self, due: datetime) -> datetime | None:
        if self.expires_in_seconds is None:
            return None
        start = max(due, self.run_at) if self.run_at is not None else due
        return start + timedelta(seconds=self.expires_in_seconds)

    def dependency_settled(self, dependency: JobId, status: JobStatus, now: datetime) -> Job | None:
        """A dependency reached the final ``status``: what this job becomes (``None``: no change).

        It stops waiting for it; a FAILED or CANCELLED one fails this job under the ``FAIL`` policy;
        with nothing left to wait for, WAITING → PENDING (not yet sent: ``enqueued_at`` is unset).
        """
        if self.status is not JobStatus.WAITING or dependency not in self.waiting_for:
            return None
        if status not in TERMINAL_STATUSES:
            return None
        remaining = tuple(d for d in self.waiting_for if d != dependency)
        if status is not JobStatus.COMPLETED and self.on_dependency_failure is DependencyFailure.FAIL:
            return self._next(
                now,
                status=JobStatus.FAILED,
                waiting_for=remaining,
                error=f"dependency {dependency} {status.value}",
                completed_at=now,
            )
        if remaining:
            return self._next(now, waiting_for=remaining)
        return replace(self, waiting_for=()).released_to_queue(now)

    def released_to_queue(self, now: datetime) -> Job:
        """WAITING with nothing left to wait for → PENDING, to be sent (DESIGN.md §2's path)."""
        if self.status is not JobStatus.WAITING or self.waiting_for:
            raise InvalidStateError(f"job {self.id} is {self.status} and waits for {len(self.waiting_for)}")
        return self._next(now, status=JobStatus.PENDING, enqueued_at=None, expires_at=self._expiry(now))

    def waiting_again(self, now: datetime, waiting_for: tuple[JobId, ...]) -> Job:
        """FAILED or CANCELLED → WAITING for ``waiting_for`` (a flow retried: its dependencies rerun)."""
        retried = self.retried(now)
        return replace(retried, status=JobStatus.WAITING, waiting_for=waiting_for, expires_at=None)


class ClaimDecision(enum.Enum):
    """What to do with a delivered message, decided from the job it names."""

    RUN = "run"  # claim it and run the handler
    NOT_YET = "not_yet"  # PENDING with run_at in the future: hide the message until then
    CANCEL = "cancel"  # expired lease with cancel requested: write CANCELLED
    FAIL = "fail"  # expired lease on the last attempt: write FAILED
    DROP = "drop"  # running under a live lease, or finished: acknowledge and forget


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's hold on one attempt of a job; every write of that attempt carries it."""

    job_id: JobId
    worker_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One stored change of a job: ``job`` is the job as of ``version`` (without its payload)."""

    job_id: JobId
    version: int
    kind: JobEventKind
    at: datetime
    job: Job
    message: str | None = None
    level: LogLevel | None = None

    @property
    def owner(self) -> str:
        return self.job.owner

    @property
    def type(self) -> str:
        return self.job.type

    @classmethod
    def of(
        cls, job: Job, kind: JobEventKind, message: str | None = None, level: LogLevel | None = None
    ) -> JobEvent:
        """The event recording that ``job`` reached its current version."""
        return cls(
            job_id=job.id,
            version=job.version,
            kind=kind,
            at=job.updated_at,
            job=job.without_payload(),
            message=message,
            level=level,
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a ``user`` sees only jobs it owns, an ``admin`` sees everything."""

    subject: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see(self, job: Job) -> bool:
        return self.is_admin or job.owner == self.subject
