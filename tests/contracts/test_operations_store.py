"""The ``OperationsStore`` contract (workers, per-minute stats, retention) on SQLite and MongoDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core.backends.store.operations import operations_for
from core.models import Job, JobEvent, JobEventKind, JobStatus, utcnow
from core.operations import MinuteStats, WorkerRecord, WorkerStatus, histogram_bucket
from core.ports import JobStore


def _worker(worker_id: str = "w1", seen_ago: float = 0.0) -> WorkerRecord:
    now = utcnow()
    return WorkerRecord(
        id=worker_id, host="h", pid=1, version="2", types=("a",), concurrency=2, heartbeat_seconds=1.0,
        started_at=now - timedelta(seconds=5), last_seen_at=now - timedelta(seconds=seen_ago),
    )  # fmt: skip


async def test_saved_worker_is_listed(store: JobStore) -> None:
    """A saved worker is listed as saved, and ACTIVE while its heartbeat is fresh."""
    ops = operations_for(store)
    worker = replace(_worker(), running=("j1",), processed=3, failed=1)
    await ops.save_worker(worker)
    [listed] = await ops.list_workers(utcnow() - timedelta(hours=1))
    assert listed == worker
    assert listed.status(utcnow()) is WorkerStatus.ACTIVE


async def test_stale_worker_is_lost_and_alerted_once(store: JobStore) -> None:
    """A worker silent for three intervals is LOST, and only the first claim of its alert wins."""
    ops = operations_for(store)
    await ops.save_worker(_worker(seen_ago=10))
    [listed] = await ops.list_workers(utcnow() - timedelta(hours=1))
    assert listed.status(utcnow()) is WorkerStatus.LOST
    assert await ops.claim_lost_alert("w1", utcnow() - timedelta(seconds=3))
    assert not await ops.claim_lost_alert("w1", utcnow() - timedelta(seconds=3))


async def test_removed_worker_is_not_listed(store: JobStore) -> None:
    """A removed worker (a clean stop) is gone from the listing."""
    ops = operations_for(store)
    await ops.save_worker(_worker())
    await ops.remove_worker("w1")
    assert await ops.list_workers(utcnow() - timedelta(hours=1)) == []


async def test_stats_of_several_flushes_add_up(store: JobStore) -> None:
    """Two flushes of the same minute and type add their counts and histograms."""
    ops = operations_for(store)
    bucket = histogram_bucket(0.5)
    first = MinuteStats(100, "a", submitted=2, completed=1, run_ms={bucket: 1}, queue_depth=3)
    second = MinuteStats(100, "a", submitted=1, failed=1, run_ms={bucket: 2}, queue_depth=1)
    await ops.add_stats([first, MinuteStats(101, "b", started=4)])
    await ops.add_stats([second])
    rows = await ops.list_stats(100, "a")
    assert rows == [
        MinuteStats(100, "a", submitted=3, completed=1, failed=1, run_ms={bucket: 3}, queue_depth=3)
    ]
    assert [r.minute for r in await ops.list_stats(0, None)] == [100, 101]


async def test_retention_deletes_only_jobs_finished_before(store: JobStore) -> None:
    """Expired finished jobs go with their events; unfinished and recent ones stay."""
    ops = operations_for(store)
    now = utcnow()
    old = now - timedelta(days=40)
    jobs = [
        Job(id=f"j{i}", type="a", owner="o", payload={}, status=status, created_at=old, updated_at=old,
            completed_at=completed)
        for i, (status, completed) in enumerate(
            [(JobStatus.COMPLETED, old), (JobStatus.FAILED, old), (JobStatus.COMPLETED, now),
             (JobStatus.PENDING, None)]
        )
    ]  # fmt: skip
    for job in jobs:
        await store.insert(job, JobEvent.of(job, JobEventKind.CREATED), now - timedelta(days=1))
    deleted = 0
    while True:
        batch = await ops.delete_expired(now - timedelta(days=30), limit=1)
        if not batch:
            break
        deleted += batch
    assert deleted == 2
    assert sorted((await store.get_many(["j0", "j1", "j2", "j3"])).keys()) == ["j2", "j3"]
    assert await store.list_events(after=None, limit=10, job_id="j0") == []
