"""``Job.attemptHistory`` and ``Job.estimatedCompletion`` (derived: see ``core/attempts.py``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from core.attempts import AttemptOutcome, JobAttempt, attempt_history, estimated_completion
from core.models import Job, JobStatus
from core.stats_history import median_run_seconds

__all__ = ["JobAttemptNode", "job_attempts", "job_estimated_completion"]

#: events read to rebuild one job's attempts (progress and log events included)
MAX_EVENTS = 10_000

strawberry.enum(AttemptOutcome)


@strawberry.type(name="JobAttempt")
class JobAttemptNode:
    """One attempt of a job: who ran it, when, and how it ended."""

    number: int
    worker: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: AttemptOutcome
    error: str | None

    @classmethod
    def of(cls, attempt: JobAttempt) -> JobAttemptNode:
        return cls(
            number=attempt.number,
            worker=attempt.worker,
            started_at=attempt.started_at,
            ended_at=attempt.ended_at,
            outcome=attempt.outcome,
            error=attempt.error,
        )


async def job_attempts(info: Info, job: Job) -> list[JobAttemptNode]:
    if job.attempts == 0 and job.status is JobStatus.PENDING and job.started_at is None:
        return []  # never started (since created or retried): nothing to read
    events = await info.context.service.store.list_events(after=None, limit=MAX_EVENTS, job_id=job.id)
    return [JobAttemptNode.of(attempt) for attempt in attempt_history(events)]


async def job_estimated_completion(info: Info, job: Job) -> datetime | None:
    if job.status is not JobStatus.PROCESSING:
        return None
    service = info.context.service
    median = None if job.progress > 0 else await median_run_seconds(service, job.type)
    return estimated_completion(job, service.clock(), median)
