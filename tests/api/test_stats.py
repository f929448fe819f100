"""JobStats: the service's counts summarised as the API shows them."""

from __future__ import annotations

from api.stats import JobStats
from core.models import JobStatus
from core.ports import QueueDepth, StoreStats, TypeCounts
from core.service import Stats


def test_stats_sum_types_and_derive_rates() -> None:
    """Totals add up the types; failure rate and average time come from finished jobs."""
    stats = Stats(
        store=StoreStats(
            by_type={
                "a": TypeCounts(
                    {JobStatus.PENDING: 3, JobStatus.COMPLETED: 3, JobStatus.FAILED: 1}, completed_seconds_total=6.0
                ),
                "b": TypeCounts({JobStatus.PENDING: 2, JobStatus.CANCELLED: 1}),
            }
        ),
        queues={"a": QueueDepth(ready=1, delayed=2, in_flight=5, dead=1), "b": QueueDepth(ready=2)},
    )

    summary = JobStats.of(stats, ["a", "b", "c"])

    assert summary.total_jobs == 10
    assert summary.failure_rate == 25.0
    assert summary.average_processing_time == 2.0
    assert (summary.queue_depth, summary.dead_letter_depth) == (5, 1)
    assert [t.type for t in summary.by_type] == ["a", "b", "c"]
    assert summary.by_type[2].by_status.pending == 0


def test_stats_without_finished_jobs() -> None:
    """No finished job: failure rate 0 and no average time."""
    summary = JobStats.of(Stats(store=StoreStats(by_type={}), queues={}))

    assert (summary.total_jobs, summary.failure_rate, summary.average_processing_time) == (0, 0.0, None)
