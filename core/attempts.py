"""A job's attempt history and its estimated completion, derived from what is already stored.

No new write on the hot path: the job's events say it all. STARTED opens an attempt (its
snapshot names the worker and the attempt number); the next RETRYING, COMPLETED, FAILED or
CANCELLED closes it, and a STARTED while one is open means the earlier worker was lost (its
lease ran out and another worker claimed the job).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core.models import Job, JobEvent, JobEventKind, JobStatus

__all__ = ["AttemptOutcome", "JobAttempt", "attempt_history", "estimated_completion"]

#: the error ``workers.attempt`` writes for a handler over its job type's timeout
_TIMEOUT_PREFIX = "timed out after"
#: the words of the errors the service writes when a worker (or an external claim) vanished
_LOST_MARKERS = ("worker lost", "expired")


class AttemptOutcome(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    LOST = "LOST"
    RELEASED = "RELEASED"


@dataclass(frozen=True, slots=True)
class JobAttempt:
    number: int
    worker: str | None
    started_at: datetime
    ended_at: datetime | None = None
    outcome: AttemptOutcome = AttemptOutcome.RUNNING
    error: str | None = None


def _failure(error: str | None, message: str | None) -> AttemptOutcome:
    text = f"{error or ''} {message or ''}"
    if (error or "").startswith(_TIMEOUT_PREFIX):
        return AttemptOutcome.TIMED_OUT
    if any(marker in text for marker in _LOST_MARKERS):
        return AttemptOutcome.LOST
    return AttemptOutcome.FAILED


def _ended(attempt: JobAttempt, event: JobEvent) -> JobAttempt:
    job = event.job
    kind = event.kind
    if kind is JobEventKind.COMPLETED:
        return replace(attempt, ended_at=event.at, outcome=AttemptOutcome.COMPLETED)
    if kind is JobEventKind.CANCELLED:
        return replace(attempt, ended_at=event.at, outcome=AttemptOutcome.CANCELLED)
    if kind is JobEventKind.RETRYING and job.attempts < attempt.number:
        return replace(attempt, ended_at=event.at, outcome=AttemptOutcome.RELEASED, error=event.message)
    return replace(attempt, ended_at=event.at, outcome=_failure(job.error, event.message), error=job.error)


def attempt_history(events: Sequence[JobEvent]) -> list[JobAttempt]:
    """One entry per attempt, oldest first, from a job's events in version order."""
    attempts: list[JobAttempt] = []
    open_: JobAttempt | None = None
    closing = (JobEventKind.RETRYING, JobEventKind.COMPLETED, JobEventKind.FAILED, JobEventKind.CANCELLED)
    for event in events:
        if event.kind is JobEventKind.STARTED:
            if open_ is not None:
                attempts.append(
                    replace(open_, ended_at=event.at, outcome=AttemptOutcome.LOST, error="worker lost")
                )
            open_ = JobAttempt(event.job.attempts, event.job.lease_owner, event.at)
        elif event.kind in closing and open_ is not None:
            attempts.append(_ended(open_, event))
            open_ = None
    if open_ is not None:
        attempts.append(open_)
    return attempts


def estimated_completion(job: Job, now: datetime, median_run_seconds: float | None) -> datetime | None:
    """When a PROCESSING job should finish: from its progress rate, else the type's median run time."""
    if job.status is not JobStatus.PROCESSING or job.started_at is None:
        return None
    elapsed = max(0.0, (now - job.started_at).total_seconds())
    if job.progress > 0:
        remaining = elapsed * (100.0 - job.progress) / job.progress
        return now + timedelta(seconds=remaining)
    if median_run_seconds is None:
        return None
    return max(now, job.started_at + timedelta(seconds=median_run_seconds))
