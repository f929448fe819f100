"""Operations data: the worker registry, per-minute stats aggregates, and retention (issue 15).

``OperationsStore`` is the port; ``core.backends.store.operations_sqlite`` and
``operations_mongo`` implement it beside the job store (``operations_for(store)`` picks one).
Nothing here is on a job's write path: workers heartbeat their own record, and each process
flushes the counts it saw as increments, so several processes add up.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from core.models import JobId

__all__ = [
    "FORGET_AFTER",
    "LOST_AFTER_HEARTBEATS",
    "MinuteStats",
    "OperationsStore",
    "WorkerRecord",
    "WorkerStatus",
    "histogram_bucket",
    "histogram_quantile",
    "merge_histograms",
]

#: a worker with no heartbeat for this many intervals is LOST
LOST_AFTER_HEARTBEATS = 3
#: a worker not seen for this long is no longer listed (and its record may be deleted)
FORGET_AFTER = timedelta(hours=1)
#: run and wait times are kept as log-scale histograms: bucket ``i`` holds [B^i, B^(i+1)) ms
_HISTOGRAM_BASE = 1.1


class WorkerStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    DRAINING = "DRAINING"
    LOST = "LOST"


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker process as it last reported itself."""

    id: str
    host: str
    pid: int
    version: str
    types: tuple[str, ...]
    concurrency: int
    heartbeat_seconds: float
    started_at: datetime
    last_seen_at: datetime
    draining: bool = False
    running: tuple[JobId, ...] = ()
    processed: int = 0
    failed: int = 0
    #: set once, by the one process that alerted that this worker was LOST
    lost_alerted: bool = False

    def lost_before(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_seconds * LOST_AFTER_HEARTBEATS)

    def status(self, now: datetime) -> WorkerStatus:
        if self.last_seen_at < now - self.lost_before():
            return WorkerStatus.LOST
        return WorkerStatus.DRAINING if self.draining else WorkerStatus.ACTIVE


@dataclass(slots=True)
class MinuteStats:
    """What happened to the jobs of one type in one minute (``minute``: epoch seconds // 60)."""

    minute: int
    type: str
    submitted: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    run_ms: dict[int, int] = field(default_factory=dict)  # histogram bucket → count
    wait_ms: dict[int, int] = field(default_factory=dict)
    queue_depth: int = 0  # the deepest the type's queue was seen in this minute

    def add(self, other: MinuteStats) -> None:
        """Fold ``other`` (same minute and type, or a coarser bucket) into this one."""
        self.submitted += other.submitted
        self.started += other.started
        self.completed += other.completed
        self.failed += other.failed
        merge_histograms(self.run_ms, other.run_ms)
        merge_histograms(self.wait_ms, other.wait_ms)
        self.queue_depth = max(self.queue_depth, other.queue_depth)

    def is_empty(self) -> bool:
        return not (self.submitted or self.started or self.completed or self.failed or self.queue_depth)

    def copy(self) -> MinuteStats:
        return replace(self, run_ms=dict(self.run_ms), wait_ms=dict(self.wait_ms))


def minute_of(at: datetime) -> int:
    return int(at.timestamp()) // 60


def minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def histogram_bucket(seconds: float) -> int:
    """The histogram bucket of a duration (anything under a millisecond is bucket 0)."""
    ms = seconds * 1000.0
    return 0 if ms <= 1.0 else int(math.log(ms) / math.log(_HISTOGRAM_BASE))


def merge_histograms(into: dict[int, int], other: Mapping[int, int]) -> None:
    for bucket, count in other.items():
        into[bucket] = into.get(bucket, 0) + count


def histogram_quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile in seconds (the bucket's geometric middle; within 5%), or ``None`` if empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return float(_HISTOGRAM_BASE ** (bucket + 0.5)) / 1000.0
    return None  # pragma: no cover - the loop always reaches the rank


class OperationsStore(Protocol):
    """Workers, per-minute stats and retention, kept beside the jobs."""

    async def save_worker(self, worker: WorkerRecord) -> None:
        """Create or replace ``worker``'s record (its ``lost_alerted`` flag is cleared)."""

    async def remove_worker(self, worker_id: str) -> None: ...

    async def list_workers(self, seen_after: datetime) -> list[WorkerRecord]:
        """Every worker seen after ``seen_after``, oldest start first."""

    async def claim_lost_alert(self, worker_id: str, seen_before: datetime) -> bool:
        """Mark a worker last seen before ``seen_before`` as alerted; ``True`` only for the one caller
        that marked it (so that one process alerts, once)."""

    async def add_stats(self, rows: Sequence[MinuteStats]) -> None:
        """Add these counts to the stored ones (several processes' counts add up)."""

    async def list_stats(self, since_minute: int, type: str | None) -> list[MinuteStats]:
        """The stored minutes from ``since_minute`` on (one type, or every type), oldest first."""

    async def delete_expired(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` jobs that finished before ``before`` (with their events and logs),
        and stats and workers older than that; how many jobs were deleted."""
