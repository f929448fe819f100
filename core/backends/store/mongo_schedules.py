"""``MongoScheduleStore``: schedules in a ``schedules`` collection beside the jobs (DESIGN.md §7).

One document per schedule, ``_id`` = schedule id, the codec's fields (times as microseconds);
the job template is kept as JSON bytes, since client keys are not all storable as BSON. A unique
index on (owner, name) keeps names apart; every change is an ``update_one`` on the version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from core.backends.codec import dumps, loads
from core.backends.store.schedule_codec import schedule_from_dict, schedule_to_dict
from core.cursors import from_micros, to_micros
from core.errors import BackendUnavailableError, ValidationError
from core.schedules.model import Schedule, ScheduleCursor

__all__ = ["MongoScheduleStore"]

Document = dict[str, Any]

INDEXES = [
    IndexModel([("owner", ASCENDING), ("name", ASCENDING)], name="owner_name", unique=True),
    IndexModel([("paused", ASCENDING), ("next_run_us", ASCENDING)], name="due"),
    IndexModel([("owner", ASCENDING), ("created_us", ASCENDING), ("_id", ASCENDING)], name="owner_created"),
    IndexModel([("created_us", ASCENDING), ("_id", ASCENDING)], name="created"),
]


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if isinstance(exc, DuplicateKeyError):
            raise
        raise BackendUnavailableError(f"MongoDB {what} failed: {exc}") from exc


def _document(schedule: Schedule) -> Document:
    fields = schedule_to_dict(schedule)
    fields["_id"] = fields.pop("id")
    fields["job"] = dumps(schedule.job)
    return fields


def _schedule(doc: Mapping[str, Any]) -> Schedule:
    data = dict(doc)
    data["id"] = data.pop("_id")
    data["job"] = loads(data["job"])
    return schedule_from_dict(data)


class MongoScheduleStore:
    """Schedules in the store's database; the client is the job store's (closed by it)."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.schedules = collection

    @classmethod
    async def open(cls, client: AsyncMongoClient[Document], database: str) -> MongoScheduleStore:
        """The store on ``database``, its indexes created."""
        db = client.get_database(database, write_concern=WriteConcern("majority", j=True))
        store = cls(db.get_collection("schedules"))
        with _unavailable("index creation"):
            await store.schedules.create_indexes(INDEXES)
        return store

    async def insert(self, schedule: Schedule) -> bool:
        try:
            with _unavailable("insert"):
                await self.schedules.insert_one(_document(schedule))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, schedule_id: str) -> Schedule | None:
        with _unavailable("read"):
            doc = await self.schedules.find_one({"_id": schedule_id})
        return None if doc is None else _schedule(doc)

    async def get_many(self, schedule_ids: Sequence[str]) -> dict[str, Schedule]:
        if not schedule_ids:
            return {}
        with _unavailable("read"):
            docs = await self.schedules.find({"_id": {"$in": list(set(schedule_ids))}}).to_list()
        return {doc["_id"]: _schedule(doc) for doc in docs}

    async def update(self, schedule: Schedule, expected_version: int) -> Schedule | None:
        fields = _document(schedule)
        del fields["_id"]
        try:
            with _unavailable("update"):
                result = await self.schedules.update_one(
                    {"_id": schedule.id, "version": expected_version}, {"$set": fields}
                )
        except DuplicateKeyError as exc:
            raise ValidationError(f"a schedule named {schedule.name!r} exists", field="name") from exc
        return schedule if result.modified_count == 1 else None

    async def update_many(
        self, items: Sequence[tuple[Schedule, int]]
    ) -> list[Schedule | None | BaseException]:
        # One round trip each, concurrently: a bulk write would not say which conditional update matched.
        return list(await asyncio.gather(*(self.update(s, v) for s, v in items), return_exceptions=True))

    async def delete(self, schedule_id: str) -> bool:
        with _unavailable("delete"):
            result = await self.schedules.delete_one({"_id": schedule_id})
        return result.deleted_count == 1

    async def due(self, before: datetime, limit: int) -> list[Schedule]:
        query = {"paused": False, "next_run_us": {"$ne": None, "$lte": to_micros(before)}}
        with _unavailable("read"):
            docs = await self.schedules.find(query).sort("next_run_us", ASCENDING).limit(limit).to_list()
        return [_schedule(doc) for doc in docs]

    async def next_due(self) -> datetime | None:
        query = {"paused": False, "next_run_us": {"$ne": None}}
        with _unavailable("read"):
            doc = await self.schedules.find_one(query, {"next_run_us": 1}, sort=[("next_run_us", ASCENDING)])
        return None if doc is None else from_micros(doc["next_run_us"])

    async def list(self, owner: str | None, first: int, after: ScheduleCursor | None) -> list[Schedule]:
        query: Document = {} if owner is None else {"owner": owner}
        if after is not None:
            at = to_micros(after[0])
            query["$or"] = [{"created_us": {"$gt": at}}, {"created_us": at, "_id": {"$gt": after[1]}}]
        with _unavailable("read"):
            cursor = self.schedules.find(query).sort([("created_us", ASCENDING), ("_id", ASCENDING)])
            docs = await cursor.limit(first).to_list()
        return [_schedule(doc) for doc in docs]

    async def count(self, owner: str | None) -> int:
        with _unavailable("count"):
            return await self.schedules.count_documents({} if owner is None else {"owner": owner})
