"""Operations in GraphQL (API.md, "Operations"): ``workers`` and ``statsHistory``, admins only.

``OperationsQuery`` is mixed into ``Query``; ``Job.attemptHistory`` and ``Job.estimatedCompletion``
live in ``api/job_attempts.py``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.fields import described_field
from api.types import JobNode
from core.backends.store.operations import operations_for
from core.errors import ForbiddenError
from core.operations import FORGET_AFTER, WorkerRecord, WorkerStatus
from core.stats_history import StatsBucket, stats_history

__all__ = ["OperationsQuery", "StatsBucketNode", "WorkerNode"]

strawberry.enum(WorkerStatus)


@strawberry.type(name="Worker")
class WorkerNode:
    """A worker process as its last heartbeat described it."""

    id: strawberry.ID
    host: str
    pid: int
    version: str
    types: list[str]
    concurrency: int
    status: WorkerStatus = strawberry.field(description="LOST: no heartbeat for 3 intervals")
    processed: int = strawberry.field(description="attempts finished since it started")
    failed: int = strawberry.field(description="attempts failed since it started")
    started_at: datetime
    last_seen_at: datetime
    heartbeat_seconds: float = strawberry.field(description="how often it reports")
    record: strawberry.Private[WorkerRecord]

    @classmethod
    def of(cls, record: WorkerRecord, now: datetime) -> WorkerNode:
        return cls(
            id=strawberry.ID(record.id),
            host=record.host,
            pid=record.pid,
            version=record.version,
            types=list(record.types),
            concurrency=record.concurrency,
            status=record.status(now),
            processed=record.processed,
            failed=record.failed,
            started_at=record.started_at,
            last_seen_at=record.last_seen_at,
            heartbeat_seconds=record.heartbeat_seconds,
            record=record,
        )

    @described_field("the jobs it was running at its last heartbeat (those still PROCESSING on it)")
    async def running(self, info: Info) -> list[JobNode]:
        if not self.record.running:
            return []
        jobs = await info.context.service.store.get_many(list(self.record.running))
        return [JobNode.of(jobs[job_id]) for job_id in self.record.running if job_id in jobs]


@strawberry.type(name="StatsBucket")
class StatsBucketNode:
    """What happened in one time bucket (all types, or the one asked for)."""

    at: datetime = strawberry.field(description="the bucket's start")
    submitted: int
    started: int
    completed: int
    failed: int
    run_seconds_p50: float | None
    run_seconds_p95: float | None
    wait_seconds_p95: float | None = strawberry.field(description="submit to first start")
    queue_depth: int = strawberry.field(description="the most messages seen waiting")

    @classmethod
    def of(cls, bucket: StatsBucket) -> StatsBucketNode:
        return cls(
            at=bucket.at,
            submitted=bucket.submitted,
            started=bucket.started,
            completed=bucket.completed,
            failed=bucket.failed,
            run_seconds_p50=bucket.run_seconds_p50,
            run_seconds_p95=bucket.run_seconds_p95,
            wait_seconds_p95=bucket.wait_seconds_p95,
            queue_depth=bucket.queue_depth,
        )


def _admin_only(info: Info, what: str) -> None:
    if not info.context.principal.is_admin:
        raise ForbiddenError(f"{what} are for admins only")


@strawberry.type
class OperationsQuery:
    @described_field("admin only: every worker seen in the last hour, oldest first")
    async def workers(self, info: Info) -> list[WorkerNode]:
        _admin_only(info, "workers")
        service = info.context.service
        now = service.clock()
        records = await operations_for(service.store).list_workers(now - FORGET_AFTER)
        return [WorkerNode.of(record, now) for record in records]

    @described_field(
        "admin only; since defaults to an hour ago; buckets start at multiples of bucketSeconds "
        "(a multiple of 60) since the epoch, empty ones included"
    )
    async def stats_history(
        self, info: Info, since: datetime | None = None, bucket_seconds: int = 60, type: str | None = None
    ) -> list[StatsBucketNode]:
        _admin_only(info, "stats")
        buckets = await stats_history(info.context.service, since, bucket_seconds, type)
        return [StatsBucketNode.of(bucket) for bucket in buckets]
