"""``MongoJobStore``: jobs and their events in MongoDB (the distributed store).

Two collections. ``jobs`` holds one document per job: the codec's fields (times as integer
microseconds since the epoch, which order exactly), ``_id`` = job id, and the client's JSON
(``payload``, ``result``) as JSON bytes, since arbitrary client keys (``$x``, ``a.b``) and
integers beyond 64 bits are not all storable as BSON. ``events`` holds one document per event
with ``_id`` = ``"<job id>:<version>"``, so writing an event twice is harmless.

Every write is acknowledged by a majority, journaled (DESIGN.md §1). ``update`` is one
conditional ``update_one`` on the version, then the event insert: the job first, the event
right after it. There is no shared transaction with the queue: ``insert`` returns the job with
``enqueued_at=None`` and the service sends it; the sweeper covers a send that never happened.

Concurrent submissions share round trips (``GroupCommit``): ``insert`` writes its job alone,
then its CREATED event in one ``insert_many`` with the events of the other submissions waiting
at that moment, and ``mark_enqueued`` goes out in one ``update_many`` with the other marks.
Each caller still returns only once its own write is acknowledged, and learns its own write's
fate.

Idempotency is race-free without transactions: a job submitted with a key carries
``idem = owner NUL key``, under a unique partial index, so of two concurrent submissions exactly
one insert succeeds and the other reads the winner. When the holder is older than the window,
the next submission takes the claim from it (a conditional ``$unset``) and inserts anew.

``serverSelectionTimeoutMS`` (and any other driver option) can be set in the URL; by default a
store that cannot reach a server gives up after a few seconds, so ``/readyz`` answers quickly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from core.backends.codec import dumps, event_from_dict, event_to_dict, job_from_dict, job_to_dict, loads
from core.backends.store.mongo_schema import ensure_indexes
from core.cursors import EventCursor, JobCursor, to_micros
from core.errors import BackendUnavailableError, ConflictError
from core.group_commit import GroupCommit
from core.models import Job, JobEvent, JobEventKind, JobId, JobStatus
from core.ports import JobFilter, StoreStats, TypeCounts
from core.settings import Settings

__all__ = ["MongoJobStore"]

Document = dict[str, Any]

DEFAULT_SERVER_SELECTION_MS = 5_000
_CHUNK = 500
_MAX_IDEMPOTENCY_ROUNDS = 10
_GROUP_LIMIT = 100  # writes per coalesced insert_many / update_many
_DUPLICATE_KEY = 11000


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Driver errors become ``BackendUnavailableError`` at this boundary."""
    try:
        yield
    except PyMongoError as exc:
        raise BackendUnavailableError(f"MongoDB {what} failed: {exc}") from exc


def _idem(owner: str, key: str) -> str:
    return f"{owner}\x00{key}"


def _job_fields(job: Job) -> Document:
    """Everything of ``job`` but its id and payload, as stored (see the module docstring)."""
    fields: Document = dict(job_to_dict(job))
    del fields["id"]
    fields["result"] = dumps(job.result)
    # A BSON date for the TTL index (finished jobs expire ``retention_days`` after completion).
    fields["completed_date"] = job.completed_at
    return fields


def _needs_sending(job: Job) -> bool:
    return job.status is JobStatus.PENDING and job.enqueued_at is None


def _job_document(job: Job) -> Document:
    doc = {"_id": job.id, **_job_fields(job), "payload": dumps(job.payload)}
    if job.idempotency_key is not None:
        doc["idem"] = _idem(job.owner, job.idempotency_key)
    if _needs_sending(job):
        doc["sweep_us"] = to_micros(job.updated_at)
    return doc


def _duplicates(error: BulkWriteError, what: str) -> set[int]:
    """The positions a bulk insert refused for a duplicate key; any other failure is raised.

    A write concern error means the writes that did happen are not known to be durable.
    """
    details = error.details
    others = [e for e in details.get("writeErrors", []) if e.get("code") != _DUPLICATE_KEY]
    if others or details.get("writeConcernErrors"):
        first = (others or details["writeConcernErrors"])[0]
        raise BackendUnavailableError(f"MongoDB {what} failed: {first.get('errmsg', first)}") from error
    return {e["index"] for e in details.get("writeErrors", [])}


def _job(doc: Mapping[str, Any]) -> Job:
    data = dict(doc)
    data["id"] = data.pop("_id")
    data["result"] = loads(data["result"])
    payload = data.pop("payload", None)
    return job_from_dict(data, None if payload is None else loads(payload))


def _event_document(event: JobEvent) -> Document:
    return {
        "_id": f"{event.job_id}:{event.version}",
        "job_id": event.job_id,
        "version": event.version,
        "at_us": to_micros(event.at),
        "at_date": event.at,
        "kind": event.kind.value,
        "type": event.type,
        "owner": event.owner,
        "doc": dumps(event_to_dict(event)),
    }


def _bulk_outcomes(what: str, count: int, exc: BulkWriteError) -> list[None | BaseException]:
    """Each write's fate after a partly failed unordered bulk write.

    A duplicate key is success (the document was written before: events are keyed by job id and
    version). A write-concern error leaves every write of the batch unconfirmed: all failed.
    """
    details = exc.details
    if details.get("writeConcernErrors"):
        raise BackendUnavailableError(f"MongoDB {what} failed: {details['writeConcernErrors'][0]}") from exc
    errors = {e["index"]: e for e in details.get("writeErrors", []) if e.get("code") != _DUPLICATE_KEY}
    return [
        None
        if i not in errors
        else BackendUnavailableError(f"MongoDB {what} failed: {errors[i].get('errmsg', errors[i])}")
        for i in range(count)
    ]


def _event(doc: Mapping[str, Any]) -> JobEvent:
    return event_from_dict(loads(doc["doc"]))


def _filter_query(filter: JobFilter) -> Document | None:
    """The query for ``filter``, or ``None`` when it matches nothing."""
    query: Document = {}
    if filter.statuses is not None:
        if not filter.statuses:
            return None
        query["status"] = {"$in": sorted(s.value for s in filter.statuses)}
    if filter.type is not None:
        query["type"] = filter.type
    if filter.owner is not None:
        query["owner"] = filter.owner
    if filter.schedule_id is not None:
        query["schedule_id"] = filter.schedule_id
    if filter.flow_id is not None:
        query["flow_id"] = filter.flow_id
    created: Document = {}
    if filter.created_after is not None:
        created["$gt"] = to_micros(filter.created_after)
    if filter.created_before is not None:
        created["$lt"] = to_micros(filter.created_before)
    if created:
        query["created_at"] = created
    return query


class MongoJobStore:
    """Jobs and events in one MongoDB database; see the module docstring for the layout."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.client = client
        db = client.get_database(database, write_concern=WriteConcern("majority", j=True))
        self.jobs: AsyncCollection[Document] = db.get_collection("jobs")
        self.events: AsyncCollection[Document] = db.get_collection("events")
        # Concurrent submissions' CREATED events, and their marks after the send, go to the server
        # together: one majority write for all that waited while the previous one was in flight.
        self._created_events: GroupCommit[str, Document, None] = GroupCommit(
            self._insert_event_group, _GROUP_LIMIT
        )
        self._marks: GroupCommit[str, tuple[JobId, int], None] = GroupCommit(self._mark_many, _GROUP_LIMIT)

    @classmethod
    async def open(cls, settings: Settings) -> MongoJobStore:
        """Connect, create the indexes, and return the ready store."""
        if settings.mongodb_url is None:
            raise ValueError("MongoJobStore needs settings.mongodb_url")
        options: dict[str, Any] = {"tz_aware": True}
        if "serverselectiontimeoutms" not in settings.mongodb_url.lower():
            options["serverSelectionTimeoutMS"] = DEFAULT_SERVER_SELECTION_MS
        with _unavailable("connect"):
            client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, **options)
        store = cls(client, settings.mongodb_database)
        retention = settings.retention
        try:
            with _unavailable("index creation"):
                await ensure_indexes(store.jobs, store.events, retention)
        except BaseException:
            await client.close()
            raise
        return store

    async def ping(self) -> None:
        with _unavailable("ping"):
            await self.client.admin.command("ping")

    async def close(self) -> None:
        await self._created_events.drain()
        await self._marks.drain()
        await self.client.close()

    # -- writes -----------------------------------------------------------------------------
    async def _insert_event(self, event: JobEvent) -> None:
        try:
            await self.events.insert_one(_event_document(event))
        except DuplicateKeyError:
            pass  # written before (a retried write): events are keyed by job id and version

    async def insert(self, job: Job, event: JobEvent, idempotency_since: datetime) -> tuple[Job, bool]:
        doc = _job_document(job)
        since = to_micros(idempotency_since)
        with _unavailable("insert"):
            for _ in range(_MAX_IDEMPOTENCY_ROUNDS):
                try:
                    await self.jobs.insert_one(doc)
                except DuplicateKeyError:
                    if await self.jobs.find_one({"_id": job.id}, {"_id": 1}) is None:
                        existing = await self._idempotent_holder(job, since)
                        if existing is not None:
                            return existing, False
                        continue  # the claim was stale and is released now: insert again
                    # else our own insert went through (a retried write reported a duplicate)
                # Right after the job, in one insert_many with the other submissions' events.
                await self._created_events.run("", _event_document(event))
                return job, True
        raise ConflictError(f"idempotency key {job.idempotency_key!r} kept changing hands")

    async def insert_many(
        self, items: Sequence[tuple[Job, JobEvent]], idempotency_since: datetime
    ) -> list[tuple[Job, bool]]:
        """One unordered ``insert_many`` of the jobs, then one of their events.

        Unordered, so that one duplicate key does not stop the documents after it. Which of two
        documents with one key wins would then be the server's choice, so a key repeated within
        the call is sent once: its later items get the answer of its first. A document refused
        for a duplicate key (its key held by an earlier call, or a retried write of its own) goes
        through ``insert``'s algorithm on its own; any other refusal fails the call.
        """
        answers: list[tuple[Job, bool] | None] = [None] * len(items)
        first_of: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        sent: list[int] = []
        docs: list[Document] = []
        for index, (job, _) in enumerate(items):
            if job.idempotency_key is not None:
                idem = _idem(job.owner, job.idempotency_key)
                if idem in first_of:
                    repeats.append((index, first_of[idem]))
                    continue
                first_of[idem] = index
            sent.append(index)
            docs.append(_job_document(job))
        refused = await self._insert_jobs(docs)
        inserted = [index for n, index in enumerate(sent) if n not in refused]
        await self._insert_events([items[index][1] for index in inserted])
        for index in inserted:
            answers[index] = (items[index][0], True)
        for n in sorted(refused):
            index = sent[n]
            answers[index] = await self.insert(*items[index], idempotency_since)
        for index, first in repeats:
            holder = answers[first]
            assert holder is not None
            answers[index] = (holder[0], False)
        answered = [answer for answer in answers if answer is not None]
        assert len(answered) == len(items)  # every item is sent, refused or a repeat
        return answered

    async def _insert_jobs(self, docs: list[Document]) -> set[int]:
        """Insert ``docs`` unordered; the positions of those refused for a duplicate key."""
        if not docs:
            return set()
        with _unavailable("insert_many"):
            try:
                await self.jobs.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                return _duplicates(exc, "insert_many")
        return set()

    async def _insert_events(self, events: list[JobEvent]) -> None:
        """Insert the events unordered; one written before (a retried write) is harmless."""
        if not events:
            return
        with _unavailable("insert_many of events"):
            try:
                await self.events.insert_many([_event_document(e) for e in events], ordered=False)
            except BulkWriteError as exc:
                _duplicates(exc, "insert_many of events")

    async def _idempotent_holder(self, job: Job, since: int) -> Job | None:
        """After a duplicate key: the job holding ``job``'s key within the window, if any.

        A holder older than the window loses its claim here, so the caller's next insert can win.
        """
        if job.idempotency_key is None:
            raise ConflictError(f"job id {job.id} is already taken")
        idem = _idem(job.owner, job.idempotency_key)
        holder = await self.jobs.find_one({"idem": idem})
        if holder is None:
            return None
        if holder["created_at"] >= since:
            return _job(holder)
        await self.jobs.update_one({"_id": holder["_id"], "idem": idem}, {"$unset": {"idem": ""}})
        return None

    async def update(self, job: Job, expected_version: int, event: JobEvent | None) -> Job | None:
        fields = _job_fields(job)
        change: Document
        if _needs_sending(job):
            change = {"$set": {**fields, "sweep_us": to_micros(job.updated_at)}}
        else:
            change = {"$set": fields, "$unset": {"sweep_us": ""}}
        with _unavailable("update"):
            written = await self.jobs.update_one({"_id": job.id, "version": expected_version}, change)
            if written.matched_count != 1:
                return None
            if event is not None:
                await self._insert_event(event)
        return job

    async def _insert_event_group(self, _: str, docs: list[Document]) -> list[None | BaseException]:
        with _unavailable("event insert"):
            try:
                await self.events.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                return _bulk_outcomes("event insert", len(docs), exc)
        return [None] * len(docs)

    async def mark_enqueued(self, job_id: JobId, at: datetime) -> None:
        # Coalesced with concurrent marks into one update (a lost mark costs one more send).
        await self._marks.run("", (job_id, to_micros(at)))

    async def _mark_many(self, _: str, marks: list[tuple[JobId, int]]) -> list[None | BaseException]:
        """One ``update_many`` for the marks that waited together.

        They all record the latest of their times: each job's message was sent by then (only
        whether ``enqueued_at`` is set matters to the sweeper and to claims), and one statement
        costs the server a fraction of one per job.
        """
        ids = list(dict.fromkeys(job_id for job_id, _ in marks))
        query = {"_id": {"$in": ids}, "status": JobStatus.PENDING.value, "enqueued_at": None}
        with _unavailable("mark_enqueued"):
            await self.jobs.update_many(
                query, {"$set": {"enqueued_at": max(at for _, at in marks)}, "$unset": {"sweep_us": ""}}
            )
        return [None] * len(marks)

    # -- reads ------------------------------------------------------------------------------
    async def get(self, job_id: JobId) -> Job | None:
        with _unavailable("get"):
            doc = await self.jobs.find_one({"_id": job_id})
        return None if doc is None else _job(doc)

    async def get_many(self, job_ids: Sequence[JobId]) -> dict[JobId, Job]:
        ids = list(dict.fromkeys(job_ids))
        found: dict[JobId, Job] = {}
        with _unavailable("get_many"):
            for start in range(0, len(ids), _CHUNK):
                async for doc in self.jobs.find({"_id": {"$in": ids[start : start + _CHUNK]}}):
                    job = _job(doc)
                    found[job.id] = job
        return found

    async def list_jobs(self, filter: JobFilter, first: int, after: JobCursor | None) -> list[Job]:
        query = _filter_query(filter)
        if query is None or first <= 0:
            return []
        if after is not None:
            query["$or"] = [
                {"created_at": {"$lt": after.created_micros}},
                {"created_at": after.created_micros, "_id": {"$lt": after.job_id}},
            ]
        with _unavailable("list_jobs"):
            cursor = self.jobs.find(query).sort([("created_at", -1), ("_id", -1)]).limit(first)
            return [_job(doc) async for doc in cursor]

    async def count_jobs(self, filter: JobFilter) -> int:
        query = _filter_query(filter)
        if query is None:
            return 0
        with _unavailable("count_jobs"):
            return await self.jobs.count_documents(query)

    async def list_events(
        self,
        *,
        after: EventCursor | None,
        limit: int,
        job_id: JobId | None = None,
        type: str | None = None,
        owner: str | None = None,
    ) -> list[JobEvent]:
        if limit <= 0:
            return []
        query: Document = {}
        if job_id is not None:
            # Within a job, versions order its events; the cursor's version is what counts.
            query["job_id"] = job_id
            if after is not None:
                query["version"] = {"$gt": after.version if after.job_id == job_id else 0}
            order = [("version", 1)]
        else:
            if after is not None:
                at, other, version = after.at_micros, after.job_id, after.version
                query["$or"] = [
                    {"at_us": {"$gt": at}},
                    {"at_us": at, "job_id": {"$gt": other}},
                    {"at_us": at, "job_id": other, "version": {"$gt": version}},
                ]
            order = [("at_us", 1), ("job_id", 1), ("version", 1)]
        if type is not None:
            query["type"] = type
        if owner is not None:
            query["owner"] = owner
        with _unavailable("list_events"):
            cursor = self.events.find(query, {"doc": 1}).sort(order).limit(limit)
            return [_event(doc) async for doc in cursor]

    async def list_logs(self, job_id: JobId, last: int) -> list[JobEvent]:
        if last <= 0:
            return []
        query = {"job_id": job_id, "kind": JobEventKind.LOG.value}
        with _unavailable("list_logs"):
            cursor = self.events.find(query, {"doc": 1}).sort("version", -1).limit(last)
            newest_first = [_event(doc) async for doc in cursor]
        return newest_first[::-1]

    async def stats(self) -> StoreStats:
        completed_us = {"$subtract": ["$completed_at", "$started_at"]}
        pipeline: list[Document] = [
            {
                "$group": {
                    "_id": {"type": "$type", "status": "$status"},
                    "count": {"$sum": 1},
                    "run_us": {
                        "$sum": {"$cond": [{"$eq": ["$status", JobStatus.COMPLETED.value]}, completed_us, 0]}
                    },
                }
            }
        ]
        counts: dict[str, dict[JobStatus, int]] = {}
        seconds: dict[str, float] = {}
        with _unavailable("stats"):
            cursor = await self.jobs.aggregate(pipeline)
            async for row in cursor:
                type_, status = row["_id"]["type"], JobStatus(row["_id"]["status"])
                counts.setdefault(type_, {})[status] = row["count"]
                seconds[type_] = seconds.get(type_, 0.0) + (row["run_us"] or 0) / 1e6
        return StoreStats({t: TypeCounts(c, seconds.get(t, 0.0)) for t, c in counts.items()})

    async def find_unenqueued(
        self, *, updated_before: datetime, run_before: datetime, limit: int
    ) -> list[Job]:
        if limit <= 0:
            return []
        query: Document = {
            "sweep_us": {"$lt": to_micros(updated_before)},
            "status": JobStatus.PENDING.value,
            "enqueued_at": None,
            "$or": [{"run_at": None}, {"run_at": {"$lt": to_micros(run_before)}}],
        }
        with _unavailable("find_unenqueued"):
            cursor = self.jobs.find(query).sort("sweep_us", 1).limit(limit)
            return [_job(doc) async for doc in cursor]
