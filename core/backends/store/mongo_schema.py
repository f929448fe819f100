"""The indexes of ``MongoJobStore``, created (idempotently) when it opens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

__all__ = ["EVENTS_TTL_INDEX", "JOBS_TTL_INDEX", "ensure_indexes"]

Document = dict[str, Any]

JOBS_TTL_INDEX = "completed_ttl"
EVENTS_TTL_INDEX = "at_ttl"

_NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]
_CURSOR = [("at_us", ASCENDING), ("job_id", ASCENDING), ("version", ASCENDING)]

JOB_INDEXES = [
    # Listings: newest first, narrowed by owner, status and type (every JobFilter combination
    # the API issues has an index whose prefix matches it).
    IndexModel([("owner", ASCENDING), ("status", ASCENDING), *_NEWEST], name="owner_status_created"),
    IndexModel([("owner", ASCENDING), *_NEWEST], name="owner_created"),
    IndexModel([("status", ASCENDING), *_NEWEST], name="status_created"),
    IndexModel([("type", ASCENDING), ("status", ASCENDING), *_NEWEST], name="type_status_created"),
    IndexModel(_NEWEST, name="created"),
    # A schedule's jobs (JobFilter.scheduleId); only jobs a schedule submitted are in it.
    IndexModel(
        [("schedule_id", ASCENDING), *_NEWEST],
        name="schedule_created",
        partialFilterExpression={"schedule_id": {"$type": "string"}},
    ),
    # A flow's jobs (JobFilter.flowId); only jobs of a flow are in it.
    IndexModel(
        [("flow_id", ASCENDING), *_NEWEST],
        name="flow_created",
        partialFilterExpression={"flow_id": {"$type": "string"}},
    ),
    # One live holder per owner + idempotency key: what makes concurrent submissions race-free.
    IndexModel(
        [("idem", ASCENDING)],
        name="idempotency",
        unique=True,
        partialFilterExpression={"idem": {"$exists": True}},
    ),
    # The sweeper's work list: PENDING jobs with no message sent (the field exists only then).
    IndexModel(
        [("sweep_us", ASCENDING)], name="unenqueued", partialFilterExpression={"sweep_us": {"$exists": True}}
    ),
    # The sweeper's expiresInSeconds list (``MongoFlowStore.find_expired``): PENDING jobs that have
    # an expiry, soonest first.
    IndexModel(
        [("expires_at", ASCENDING)],
        name="pending_expiring",
        partialFilterExpression={"status": "PENDING", "expires_at": {"$type": "number"}},
    ),
]

EVENT_INDEXES = [
    IndexModel(_CURSOR, name="cursor"),
    IndexModel([("job_id", ASCENDING), ("version", ASCENDING)], name="job_version"),
    IndexModel([("owner", ASCENDING), *_CURSOR], name="owner_cursor"),
    IndexModel([("type", ASCENDING), *_CURSOR], name="type_cursor"),
]


async def _ensure_ttl(
    collection: AsyncCollection[Document], name: str, field: str, after: timedelta | None
) -> None:
    """Create, retune or drop a TTL index so that it matches the configured retention."""
    existing = await collection.index_information()
    if after is None:
        if name in existing:
            await collection.drop_index(name)
        return
    seconds = max(1, int(after.total_seconds()))
    if name in existing and existing[name].get("expireAfterSeconds") != seconds:
        await collection.drop_index(name)
    try:
        await collection.create_index([(field, ASCENDING)], name=name, expireAfterSeconds=seconds)
    except OperationFailure:
        # Another process created it with other options in the meantime: theirs is as good.
        if name not in await collection.index_information():
            raise


async def ensure_indexes(
    jobs: AsyncCollection[Document], events: AsyncCollection[Document], retention: timedelta | None
) -> None:
    """Create every index; with ``retention``, finished jobs and events expire after it."""
    await jobs.create_indexes(JOB_INDEXES)
    await events.create_indexes(EVENT_INDEXES)
    # Finished jobs expire ``retention`` after completion (``completed_date`` is null until then),
    # events ``retention`` after they happened.
    await _ensure_ttl(jobs, JOBS_TTL_INDEX, "completed_date", retention)
    await _ensure_ttl(events, EVENTS_TTL_INDEX, "at_date", retention)
