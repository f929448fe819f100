"""The stored shape of ``WorkerRecord`` and ``MinuteStats``, shared by both operations stores."""

from __future__ import annotations

from typing import Any

from core.cursors import from_micros, to_micros
from core.operations import MinuteStats, WorkerRecord

__all__ = ["stats_from_dict", "stats_to_dict", "worker_from_dict", "worker_to_dict"]


def worker_to_dict(worker: WorkerRecord) -> dict[str, Any]:
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "version": worker.version,
        "types": list(worker.types),
        "concurrency": worker.concurrency,
        "heartbeat_seconds": worker.heartbeat_seconds,
        "started_us": to_micros(worker.started_at),
        "last_seen_us": to_micros(worker.last_seen_at),
        "draining": worker.draining,
        "running": list(worker.running),
        "processed": worker.processed,
        "failed": worker.failed,
        "lost_alerted": worker.lost_alerted,
    }


def worker_from_dict(data: dict[str, Any]) -> WorkerRecord:
    return WorkerRecord(
        id=str(data["id"]),
        host=str(data["host"]),
        pid=int(data["pid"]),
        version=str(data["version"]),
        types=tuple(data["types"]),
        concurrency=int(data["concurrency"]),
        heartbeat_seconds=float(data["heartbeat_seconds"]),
        started_at=from_micros(int(data["started_us"])),
        last_seen_at=from_micros(int(data["last_seen_us"])),
        draining=bool(data.get("draining", False)),
        running=tuple(data.get("running", ())),
        processed=int(data.get("processed", 0)),
        failed=int(data.get("failed", 0)),
        lost_alerted=bool(data.get("lost_alerted", False)),
    )


def _histogram(data: Any) -> dict[int, int]:
    return {int(bucket): int(count) for bucket, count in (data or {}).items()}


def stats_to_dict(row: MinuteStats) -> dict[str, Any]:
    """Histogram keys are strings (JSON and BSON keys are)."""
    return {
        "minute": row.minute,
        "type": row.type,
        "submitted": row.submitted,
        "started": row.started,
        "completed": row.completed,
        "failed": row.failed,
        "run_ms": {str(k): v for k, v in row.run_ms.items()},
        "wait_ms": {str(k): v for k, v in row.wait_ms.items()},
        "queue_depth": row.queue_depth,
    }


def stats_from_dict(data: dict[str, Any]) -> MinuteStats:
    return MinuteStats(
        minute=int(data["minute"]),
        type=str(data["type"]),
        submitted=int(data.get("submitted", 0)),
        started=int(data.get("started", 0)),
        completed=int(data.get("completed", 0)),
        failed=int(data.get("failed", 0)),
        run_ms=_histogram(data.get("run_ms")),
        wait_ms=_histogram(data.get("wait_ms")),
        queue_depth=int(data.get("queue_depth", 0)),
    )
