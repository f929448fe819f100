"""``MongoOperationsStore``: workers, per-minute stats and retention in MongoDB.

Collections ``workers`` (``_id`` = worker id) and ``stats_minutes`` (``_id`` = ``minute:type``).
Stats flushes are ``$inc`` / ``$max`` upserts, so flushes of many processes add up without a read.
Retention deletes in batches (a find of ``limit`` ids, then two ``delete_many``); the TTL indexes
``MongoJobStore`` creates do the same work in the background when ``retention_days`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from core.backends.store.operations_codec import stats_from_dict, worker_from_dict, worker_to_dict
from core.cursors import to_micros
from core.errors import BackendUnavailableError
from core.operations import MinuteStats, WorkerRecord, minute_of

__all__ = ["MongoOperationsStore"]

Document = dict[str, Any]


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        raise BackendUnavailableError(f"MongoDB {what} failed: {exc}") from exc


def _stats_update(row: MinuteStats) -> UpdateOne:
    inc: Document = {
        "submitted": row.submitted,
        "started": row.started,
        "completed": row.completed,
        "failed": row.failed,
    }
    inc.update({f"run_ms.{bucket}": count for bucket, count in row.run_ms.items()})
    inc.update({f"wait_ms.{bucket}": count for bucket, count in row.wait_ms.items()})
    return UpdateOne(
        {"_id": f"{row.minute}:{row.type}"},
        {
            "$inc": inc,
            "$max": {"queue_depth": row.queue_depth},
            "$setOnInsert": {"minute": row.minute, "type": row.type},
        },
        upsert=True,
    )


class MongoOperationsStore:
    """See the module docstring."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.workers = db.get_collection("workers")
        self.stats = db.get_collection("stats_minutes")
        self.jobs = db.get_collection("jobs")
        self.events = db.get_collection("events")
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        with _unavailable("index creation"):
            await self.stats.create_index([("minute", ASCENDING), ("type", ASCENDING)], name="minute_type")
            await self.workers.create_index([("last_seen_us", ASCENDING)], name="last_seen")
            await self.jobs.create_index([("completed_date", ASCENDING)], name="completed_date")
        self._indexed = True

    async def save_worker(self, worker: WorkerRecord) -> None:
        doc = worker_to_dict(worker)
        doc["_id"] = doc.pop("id")
        doc["lost_alerted"] = False
        with _unavailable("worker heartbeat"):
            await self.workers.replace_one({"_id": worker.id}, doc, upsert=True)

    async def remove_worker(self, worker_id: str) -> None:
        with _unavailable("worker removal"):
            await self.workers.delete_one({"_id": worker_id})

    async def list_workers(self, seen_after: datetime) -> list[WorkerRecord]:
        with _unavailable("worker listing"):
            docs = await self.workers.find({"last_seen_us": {"$gt": to_micros(seen_after)}}).to_list(None)
        workers = [worker_from_dict({**doc, "id": doc["_id"]}) for doc in docs]
        return sorted(workers, key=lambda w: (w.started_at, w.id))

    async def claim_lost_alert(self, worker_id: str, seen_before: datetime) -> bool:
        with _unavailable("worker alert mark"):
            result = await self.workers.update_one(
                {"_id": worker_id, "lost_alerted": False, "last_seen_us": {"$lt": to_micros(seen_before)}},
                {"$set": {"lost_alerted": True}},
            )
        return result.modified_count == 1

    async def add_stats(self, rows: Sequence[MinuteStats]) -> None:
        if not rows:
            return
        await self._ensure_indexes()
        with _unavailable("stats flush"):
            await self.stats.bulk_write([_stats_update(row) for row in rows], ordered=False)

    async def list_stats(self, since_minute: int, type: str | None) -> list[MinuteStats]:
        query: Document = {"minute": {"$gte": since_minute}}
        if type is not None:
            query["type"] = type
        with _unavailable("stats read"):
            docs = await self.stats.find(query).sort("minute", ASCENDING).to_list(None)
        return [stats_from_dict(doc) for doc in docs]

    async def delete_expired(self, before: datetime, limit: int) -> int:
        await self._ensure_indexes()
        with _unavailable("retention"):
            docs = (
                await self.jobs.find({"completed_date": {"$lt": before}}, {"_id": 1})
                .limit(limit)
                .to_list(None)
            )
            ids = [doc["_id"] for doc in docs]
            if ids:
                await self.events.delete_many({"job_id": {"$in": ids}})
                await self.jobs.delete_many({"_id": {"$in": ids}})
            await self.stats.delete_many({"minute": {"$lt": minute_of(before)}})
            await self.workers.delete_many({"last_seen_us": {"$lt": to_micros(before)}})
        return len(ids)
