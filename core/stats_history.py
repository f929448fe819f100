"""Per-minute stats: counted from the events each process writes, flushed as increments.

``StatsRecorder`` is a ``JobService`` listener: CREATED counts a submit, STARTED a start (and,
on a first attempt, the wait since submission), COMPLETED and FAILED a finish (and the run time).
``run_stats_recorder`` flushes the counts every ``JOBPULSE_STATS_FLUSH_SECONDS`` (and at stop) with
the deepest queue seen, so ``statsHistory`` reads a few stored rows per minute, never the jobs.
A crash loses at most one flush interval of one process's counts.
"""

from __future__ import annotations

import asyncio
import weakref
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from core.backends.store.operations import operations_for
from core.errors import ValidationError
from core.models import JobEvent, JobEventKind
from core.operations import (
    MinuteStats,
    histogram_bucket,
    histogram_quantile,
    merge_histograms,
    minute_of,
)
from core.service import JobService

__all__ = [
    "MAX_BUCKETS",
    "StatsBucket",
    "StatsRecorder",
    "median_run_seconds",
    "run_stats_recorder",
    "stats_history",
]

log = structlog.get_logger("jobpulse.stats")

#: most buckets one ``statsHistory`` answers
MAX_BUCKETS = 10_080
#: how far back the type's median run time (for ``estimatedCompletion``) looks
MEDIAN_WINDOW = timedelta(hours=24)
_MEDIAN_CACHE_SECONDS = 30.0


class StatsRecorder:
    """Counts a process's events per minute and type until ``take`` hands them over."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, str], MinuteStats] = {}

    def _row(self, at: datetime, type: str) -> MinuteStats:
        key = (minute_of(at), type)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = MinuteStats(key[0], type)
        return row

    def on_event(self, event: JobEvent) -> None:
        job = event.job
        kind = event.kind
        if kind is JobEventKind.CREATED:
            self._row(event.at, job.type).submitted += 1
        elif kind is JobEventKind.STARTED:
            row = self._row(event.at, job.type)
            row.started += 1
            if job.attempts == 1:
                wait = (event.at - job.created_at).total_seconds()
                merge_histograms(row.wait_ms, {histogram_bucket(wait): 1})
        elif kind in (JobEventKind.COMPLETED, JobEventKind.FAILED):
            row = self._row(event.at, job.type)
            if kind is JobEventKind.COMPLETED:
                row.completed += 1
            else:
                row.failed += 1
            if job.started_at is not None:
                run = (event.at - job.started_at).total_seconds()
                merge_histograms(row.run_ms, {histogram_bucket(run): 1})

    def note_depth(self, at: datetime, type: str, waiting: int) -> None:
        row = self._row(at, type)
        row.queue_depth = max(row.queue_depth, waiting)

    def take(self) -> list[MinuteStats]:
        rows, self._rows = list(self._rows.values()), {}
        return [row for row in rows if not row.is_empty()]

    def put_back(self, rows: list[MinuteStats]) -> None:
        """Counts a failed flush did not store: they go out with the next one."""
        for row in rows:
            key = (row.minute, row.type)
            held = self._rows.get(key)
            if held is None:
                self._rows[key] = row
            else:
                held.add(row)


async def flush(service: JobService, recorder: StatsRecorder, *, sample_depths: bool = True) -> None:
    """Note the queue depths, then store what ``recorder`` counted."""
    if sample_depths:
        types = [t.name for t in service.registry if not t.external]
        with suppress(Exception):
            now = service.clock()
            for type, depth in (await service.queue.depths(types)).items():
                recorder.note_depth(now, type, depth.waiting)
    rows = recorder.take()
    try:
        await operations_for(service.store).add_stats(rows)
    except Exception as exc:
        recorder.put_back(rows)
        log.warning("stats not flushed; kept for the next flush", error=str(exc))


async def run_stats_recorder(service: JobService, stop: asyncio.Event) -> None:
    """A background task: count this process's events and flush them every interval until ``stop``."""
    recorder = StatsRecorder()
    service.listeners.append(recorder.on_event)
    try:
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), service.settings.stats_flush_seconds)
            await flush(service, recorder)
    finally:
        with suppress(ValueError):
            service.listeners.remove(recorder.on_event)


@dataclass(frozen=True, slots=True)
class StatsBucket:
    at: datetime
    submitted: int
    started: int
    completed: int
    failed: int
    run_seconds_p50: float | None
    run_seconds_p95: float | None
    wait_seconds_p95: float | None
    queue_depth: int


async def stats_history(
    service: JobService, since: datetime | None, bucket_seconds: int, type: str | None
) -> list[StatsBucket]:
    """Every bucket from ``since`` (default: an hour ago) to now, empty ones included."""
    if bucket_seconds < 60 or bucket_seconds % 60:
        raise ValidationError("bucketSeconds must be a multiple of 60", field="bucketSeconds")
    now = service.clock()
    since = since if since is not None else now - timedelta(hours=1)
    first = int(since.timestamp()) // bucket_seconds * bucket_seconds
    last = int(now.timestamp()) // bucket_seconds * bucket_seconds
    if (last - first) // bucket_seconds + 1 > MAX_BUCKETS:
        raise ValidationError(
            f"more than {MAX_BUCKETS} buckets: ask for a later since or larger buckets", field="since"
        )
    # Buckets that ended well before every process's last flush no longer change: kept per store,
    # so a dashboard polling a day of buckets reads only the newest ones again.
    final_before = int(now.timestamp()) - int(2 * service.settings.stats_flush_seconds) - FINAL_AFTER_SECONDS
    cache = _final_buckets(service, type, bucket_seconds)
    read_from = first
    while read_from <= last and read_from in cache:
        read_from += bucket_seconds
    merged: dict[int, MinuteStats] = {}
    rows = await operations_for(service.store).list_stats(read_from // 60, type) if read_from <= last else []
    for row in rows:
        start = row.minute * 60 // bucket_seconds * bucket_seconds
        held = merged.get(start)
        if held is None:
            merged[start] = held = MinuteStats(start // 60, row.type)
        held.add(row)
    buckets: list[StatsBucket] = []
    for start in range(first, last + 1, bucket_seconds):
        cached = cache.get(start)
        if cached is not None:
            buckets.append(cached)
            continue
        row = merged.get(start) or MinuteStats(start // 60, type or "")
        bucket = StatsBucket(
            at=datetime.fromtimestamp(start, now.tzinfo),
            submitted=row.submitted,
            started=row.started,
            completed=row.completed,
            failed=row.failed,
            run_seconds_p50=histogram_quantile(row.run_ms, 0.5),
            run_seconds_p95=histogram_quantile(row.run_ms, 0.95),
            wait_seconds_p95=histogram_quantile(row.wait_ms, 0.95),
            queue_depth=row.queue_depth,
        )
        if start + bucket_seconds <= final_before:
            cache[start] = bucket
        buckets.append(bucket)
    while len(cache) > MAX_BUCKETS:
        del cache[min(cache)]
    return buckets


#: a bucket this many seconds (plus two flush intervals) past its end is final
FINAL_AFTER_SECONDS = 120
_FINAL: weakref.WeakKeyDictionary[object, dict[tuple[str | None, int], dict[int, StatsBucket]]] = (
    weakref.WeakKeyDictionary()
)


def _final_buckets(service: JobService, type: str | None, bucket_seconds: int) -> dict[int, StatsBucket]:
    by_query = _FINAL.get(service.store)
    if by_query is None:
        by_query = _FINAL[service.store] = {}
    return by_query.setdefault((type, bucket_seconds), {})


_medians: dict[tuple[int, str], tuple[float, float | None]] = {}


async def median_run_seconds(service: JobService, type: str) -> float | None:
    """The type's median run time over the last day of stored stats (cached for half a minute)."""
    loop_time = asyncio.get_running_loop().time()
    key = (id(service), type)
    cached = _medians.get(key)
    if cached is not None and loop_time - cached[0] < _MEDIAN_CACHE_SECONDS:
        return cached[1]
    histogram: dict[int, int] = {}
    since = minute_of(service.clock() - MEDIAN_WINDOW)
    for row in await operations_for(service.store).list_stats(since, type):
        merge_histograms(histogram, row.run_ms)
    median = histogram_quantile(histogram, 0.5)
    _medians[key] = (loop_time, median)
    return median
