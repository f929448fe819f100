"""``JobStats``: counts by status and type, run times, failure rate, queue depths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import strawberry

from core.models import JobStatus
from core.ports import QueueDepth, TypeCounts
from core.service import Stats

__all__ = ["JobStats", "StatusCounts", "TypeStats"]


@strawberry.type
class StatusCounts:
    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int

    @classmethod
    def of(cls, counts: Mapping[JobStatus, int]) -> StatusCounts:
        return cls(
            pending=counts.get(JobStatus.PENDING, 0),
            processing=counts.get(JobStatus.PROCESSING, 0),
            completed=counts.get(JobStatus.COMPLETED, 0),
            failed=counts.get(JobStatus.FAILED, 0),
            cancelled=counts.get(JobStatus.CANCELLED, 0),
        )

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.completed + self.failed + self.cancelled


@strawberry.type
class TypeStats:
    type: str
    queue_depth: int
    dead_letter_depth: int
    by_status: StatusCounts


@strawberry.type
class JobStats:
    total_jobs: int
    by_status: StatusCounts
    average_processing_time: float | None = strawberry.field(description="seconds, over completed jobs")
    failure_rate: float = strawberry.field(description="percent of finished jobs that FAILED")
    queue_depth: int = strawberry.field(description="messages waiting, all job types")
    dead_letter_depth: int
    by_type: list[TypeStats]

    @classmethod
    def of(cls, stats: Stats, known_types: Iterable[str] = ()) -> JobStats:
        """Summarise the service's stats; every known type is listed, with zeros if it has no jobs."""
        names = sorted({*known_types, *stats.store.by_type, *stats.queues})
        totals: dict[JobStatus, int] = dict.fromkeys(JobStatus, 0)
        seconds = 0.0
        by_type = []
        for name in names:
            counts = stats.store.by_type.get(name, TypeCounts())
            depth = stats.queues.get(name, QueueDepth())
            for status, count in counts.by_status.items():
                totals[status] += count
            seconds += counts.completed_seconds_total
            by_type.append(
                TypeStats(
                    type=name,
                    # A cancelled job's message stays in the queue until it comes due (SQS cannot
                    # delete it by job id), so no more are counted than there are PENDING jobs.
                    queue_depth=min(depth.waiting, counts.by_status.get(JobStatus.PENDING, 0)),
                    dead_letter_depth=depth.dead,
                    by_status=StatusCounts.of(counts.by_status),
                )
            )
        overall = StatusCounts.of(totals)
        finished = overall.completed + overall.failed
        return cls(
            total_jobs=overall.total,
            by_status=overall,
            average_processing_time=seconds / overall.completed if overall.completed else None,
            failure_rate=overall.failed / finished * 100 if finished else 0.0,
            queue_depth=sum(t.queue_depth for t in by_type),
            dead_letter_depth=sum(t.dead_letter_depth for t in by_type),
            by_type=by_type,
        )
