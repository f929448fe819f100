"""``MongoControlStore``: flow control beside ``MongoJobStore``, for stores without transactions.

* Records: collection ``job_type_controls``, one document per type (``_id``: the type).
* Slots: collection ``flow_slots``, ``n`` documents per group (a type; a type and a key), each
  held by one job until its ``lease_until``. A claim takes a free one (no holder, or its lease
  over) with one conditional ``find_one_and_update`` and only slots numbered below the current
  limit count, so at most ``n`` are ever held. A slot carries the claim's lease and the heartbeat
  extends it: a ``kill -9``'d worker's slot is free again when its lease ends, never leaked.
* Rate: a moving window per type in Redis (``limits``, async, redis-py) when Redis is configured;
  without Redis only per process (``limits``' memory storage).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from core.backends.store.controls_sqlite import HOLD_SECONDS
from core.backends.store.mongo import MongoJobStore, _unavailable
from core.cursors import to_micros
from core.errors import BackendUnavailableError
from core.flow_control import HeldError, HoldReason, Overrides, RateLimit, TypeLimits, whole_seconds
from core.models import Job, JobId

__all__ = ["MongoControlStore"]

Document = dict[str, Any]

_JOB_INDEXES = [
    IndexModel(
        [("type", ASCENDING), ("concurrency_key", ASCENDING), ("status", ASCENDING)],
        name="concurrency_key",
        partialFilterExpression={"concurrency_key": {"$type": "string"}},
    ),
]
_SLOT_INDEXES = [IndexModel([("holder", ASCENDING)], name="holder")]


class MongoControlStore:
    """Records and slots in MongoDB, rate windows in Redis (see the module docstring)."""

    in_claim = False

    def __init__(self, store: MongoJobStore, redis_url: str | None) -> None:
        database = store.jobs.database
        self.jobs = store.jobs
        self.records: AsyncCollection[Document] = database.get_collection("job_type_controls")
        self.slots: AsyncCollection[Document] = database.get_collection("flow_slots")
        self.redis_url = redis_url
        self._storage: Storage | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        self._made: set[tuple[str, int]] = set()
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        with _unavailable("index creation"):
            await self.jobs.create_indexes(_JOB_INDEXES)
            await self.slots.create_indexes(_SLOT_INDEXES)
        self._indexed = True

    async def read_overrides(self) -> dict[str, Overrides]:
        with _unavailable("read of job type controls"):
            return {doc["_id"]: dict(doc.get("overrides", {})) async for doc in self.records.find({})}

    async def write_overrides(self, type: str, changes: Overrides) -> Overrides:
        update = {f"overrides.{name}": value for name, value in changes.items()}
        with _unavailable("write of job type controls"):
            doc = await self.records.find_one_and_update(
                {"_id": type},
                {"$set": update} if update else {"$setOnInsert": {"overrides": {}}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        return dict((doc or {}).get("overrides", {}))

    # -- claims --------------------------------------------------------------------------------
    async def take(self, job: Job, limits: TypeLimits, lease_until: datetime, now: datetime) -> float | None:
        if limits.paused:
            raise HeldError(HoldReason.PAUSED, HOLD_SECONDS, f"job type {job.type} is paused")
        await self._ensure_indexes()
        until, now_us = to_micros(lease_until), to_micros(now)
        try:
            if limits.concurrency is not None and not await self._slot(
                f"{job.type}\x00", limits.concurrency, job.id, until, now_us
            ):
                raise HeldError(HoldReason.CONCURRENCY, HOLD_SECONDS)
            key = job.concurrency_key
            if key is not None:
                if await self._ahead(job, key, now_us):
                    raise HeldError(HoldReason.KEY, HOLD_SECONDS / 4, "an earlier job of its key goes first")
                if not await self._slot(
                    f"{job.type}\x00{key}", limits.concurrency_per_key, job.id, until, now_us
                ):
                    raise HeldError(HoldReason.KEY, HOLD_SECONDS)
            rate = limits.rate_limit
            if rate is not None:
                return await self._token(job.type, rate.limit, rate.period_seconds)
        except BaseException:
            await self.give_back(job.id)
            raise
        return None

    async def _slot(self, group: str, count: int, job_id: JobId, until: int, now_us: int) -> bool:
        """Take one of ``group``'s first ``count`` slots for ``job_id`` until ``until``, if one is free."""
        await self._make_slots(group, count)
        with _unavailable("slot take"):
            taken = await self.slots.find_one_and_update(
                {
                    "group": group,
                    "index": {"$lt": count},
                    "$or": [{"holder": None}, {"lease_until": {"$lte": now_us}}],
                },
                {"$set": {"holder": job_id, "lease_until": until}},
                projection={"_id": 1},
            )
        return taken is not None

    async def _make_slots(self, group: str, count: int) -> None:
        if (group, count) in self._made:
            return
        docs = [
            {"_id": f"{group}\x00{index}", "group": group, "index": index, "holder": None, "lease_until": 0}
            for index in range(count)
        ]
        try:
            await self.slots.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise BackendUnavailableError(f"MongoDB slot creation failed: {exc}") from exc
        except Exception as exc:
            raise BackendUnavailableError(f"MongoDB slot creation failed: {exc}") from exc
        self._made.add((group, count))

    async def _ahead(self, job: Job, key: str, now_us: int) -> bool:
        """Whether a due PENDING job of the same type and key comes first (priority, then submit order)."""
        created = to_micros(job.created_at)
        query = {
            "type": job.type,
            "concurrency_key": key,
            "status": "PENDING",
            "_id": {"$ne": job.id},
            "$and": [
                {"$or": [{"run_at": None}, {"run_at": {"$lte": now_us}}]},
                {
                    "$or": [
                        {"priority": {"$gt": job.priority}},
                        {"priority": job.priority, "created_at": {"$lt": created}},
                        {"priority": job.priority, "created_at": created, "_id": {"$lt": job.id}},
                    ]
                },
            ],
        }
        with _unavailable("read of the jobs of a key"):
            return await self.jobs.find_one(query, {"_id": 1}) is not None

    async def _token(self, type: str, limit: int, period: float) -> float:
        """One start in ``type``'s moving window, or ``HeldError`` until the window has room. The
        wall time the token was asked for: the limiter stamps it microseconds later, before any I/O."""
        limiter = self._rate_limiter()
        item = RateLimitItemPerSecond(limit, whole_seconds(period))
        try:
            asked = time.time()
            if await limiter.hit(item, "jobpulse-starts", type):
                return asked
            stats = await limiter.get_window_stats(item, "jobpulse-starts", type)
        except Exception as exc:  # the limiter's storage: Redis unreachable
            raise BackendUnavailableError(f"rate limit storage failed: {exc}") from exc
        raise HeldError(HoldReason.RATE, max(0.01, stats.reset_time - time.time()))

    def _rate_limiter(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            if self.redis_url is not None:
                self._storage = RedisStorage(f"async+{self.redis_url}", implementation="redispy")
            else:
                self._storage = MemoryStorage()
            self._limiter = MovingWindowRateLimiter(self._storage)
        return self._limiter

    async def extend(self, job_id: JobId, lease_until: datetime) -> None:
        with _unavailable("slot extension"):
            until = to_micros(lease_until)
            await self.slots.update_many({"holder": job_id}, {"$set": {"lease_until": until}})

    async def give_back(self, job_id: JobId) -> None:
        with _unavailable("slot release"):
            await self.slots.update_many({"holder": job_id}, {"$set": {"holder": None, "lease_until": 0}})

    async def running(self, type: str, key: str | None, now: datetime) -> int:
        group = f"{type}\x00{key or ''}"
        with _unavailable("slot count"):
            return await self.slots.count_documents(
                {"group": group, "holder": {"$ne": None}, "lease_until": {"$gt": to_micros(now)}}
            )

    async def rate_spent(self, type: str, rate: RateLimit, now: datetime) -> bool:
        item = RateLimitItemPerSecond(rate.limit, whole_seconds(rate.period_seconds))
        try:
            stats = await self._rate_limiter().get_window_stats(item, "jobpulse-starts", type)
        except Exception:  # the limiter's storage: Redis unreachable; the claims will say so
            return False
        return stats.remaining <= 0

    async def close(self) -> None:
        """The client is closed by the job store; the limiter's Redis connections by their pool."""
