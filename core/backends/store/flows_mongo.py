"""``MongoFlowStore``: flows and the dependency index in MongoDB (DESIGN.md §6).

Without a transaction, a flow is inserted in three steps: the flow record ``creating``, its jobs
(all WAITING, none on a queue), the record ``created``. Only then does the service release the
roots; the sweeper releases the roots of a ``created`` flow a crash interrupted, and deletes a
flow (and whatever jobs of it were inserted) that stayed ``creating`` past the grace period.
Dependents are found by the ``depends_on`` array of the job documents (a multikey index).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from core.backends.store.flows_sqlite import flow_from_dict, flow_to_dict
from core.backends.store.mongo import MongoJobStore, _job, _unavailable
from core.cursors import to_micros
from core.dependencies import FlowRecord, FlowState
from core.errors import JobNotFoundError
from core.models import Job, JobEvent, JobId, JobStatus

__all__ = ["MongoFlowStore"]

Document = dict[str, Any]

# A flow's jobs by ``flow_id``: ``flow_created`` of ``mongo_schema`` (JobFilter.flowId) serves it;
# ``find_expired``'s index, ``pending_expiring``, is made with the store's (``mongo_schema``).
_JOB_INDEXES = [IndexModel([("depends_on", ASCENDING)], name="depends_on", sparse=True)]
_FLOW_INDEXES = [
    IndexModel([("owner", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="owner_created"),
    IndexModel([("state", ASCENDING), ("created_at", ASCENDING)], name="state_created"),
]


class MongoFlowStore:
    """Flows beside ``MongoJobStore`` (collection ``flows``)."""

    releases_in_transaction = False

    def __init__(self, store: MongoJobStore) -> None:
        self.store = store
        self.flows: AsyncCollection[Document] = store.jobs.database.get_collection("flows")
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        with _unavailable("index creation"):
            await self.store.jobs.create_indexes(_JOB_INDEXES)
            await self.flows.create_indexes(_FLOW_INDEXES)
        self._indexed = True

    def take_released(self, job_id: JobId, version: int) -> list[JobEvent]:
        return []

    async def insert_graph(self, flow: FlowRecord | None, jobs: Sequence[tuple[Job, JobEvent]]) -> list[Job]:
        await self._ensure_indexes()
        ids = {job.id for job, _ in jobs}
        outside = {dep for job, _ in jobs for dep in job.depends_on if dep not in ids}
        found = await self.store.get_many(list(outside))
        owner = jobs[0][0].owner if jobs else ""
        for dep in outside:
            if dep not in found or found[dep].owner != owner:
                raise JobNotFoundError(f"job {dep} not found", field="dependsOn")
        if flow is not None:
            doc = {"_id": flow.id, **flow_to_dict(flow), "state": FlowState.CREATING}
            with _unavailable("flow insert"):
                await self.flows.insert_one(doc)
        since = min(job.created_at for job, _ in jobs) - timedelta(days=1)
        answers = await self.store.insert_many(list(jobs), since)
        if flow is not None:
            await self.set_flow(flow.id, state=FlowState.CREATED)
        return [job for job, _ in answers]

    async def dependents(self, job_id: JobId, *, waiting_only: bool) -> list[Job]:
        await self._ensure_indexes()
        query: Document = {"depends_on": job_id}
        if waiting_only:
            query["status"] = JobStatus.WAITING.value
        with _unavailable("find dependents"):
            return [
                _job(doc) async for doc in self.store.jobs.find(query).sort([("created_at", 1), ("_id", 1)])
            ]

    async def find_waiting(self, *, updated_before: datetime, limit: int) -> list[Job]:
        query = {"status": JobStatus.WAITING.value, "updated_at": {"$lt": to_micros(updated_before)}}
        with _unavailable("find waiting"):
            cursor = self.store.jobs.find(query).sort("updated_at", 1).limit(limit)
            return [_job(doc) async for doc in cursor]

    async def find_expired(self, *, now: datetime, limit: int) -> list[Job]:
        query = {
            "status": JobStatus.PENDING.value,
            "expires_at": {"$type": "number", "$lte": to_micros(now)},
            "attempts": 0,
        }
        with _unavailable("find expired"):
            cursor = self.store.jobs.find(query).sort("expires_at", 1).limit(limit)
            return [_job(doc) async for doc in cursor]

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        with _unavailable("flow read"):
            doc = await self.flows.find_one({"_id": flow_id})
        return None if doc is None else flow_from_dict(doc)

    async def list_flows(self, owner: str | None, first: int, after: str | None) -> list[FlowRecord]:
        await self._ensure_indexes()
        query: Document = {"state": FlowState.CREATED}
        if owner is not None:
            query["owner"] = owner
        with _unavailable("flow listing"):
            if after is not None:
                last = await self.flows.find_one({"_id": after})
                if last is not None:
                    query["$or"] = [
                        {"created_at": {"$lt": last["created_at"]}},
                        {"created_at": last["created_at"], "_id": {"$lt": after}},
                    ]
            cursor = self.flows.find(query).sort([("created_at", -1), ("_id", -1)]).limit(first)
            return [flow_from_dict(doc) async for doc in cursor]

    async def count_flows(self, owner: str | None) -> int:
        query: Document = {"state": FlowState.CREATED}
        if owner is not None:
            query["owner"] = owner
        with _unavailable("flow count"):
            return await self.flows.count_documents(query)

    async def set_flow(
        self, flow_id: str, *, state: str | None = None, cancelled: bool | None = None
    ) -> None:
        change: Document = {}
        if state is not None:
            change["state"] = state
        if cancelled is not None:
            change["cancelled"] = cancelled
        with _unavailable("flow update"):
            await self.flows.update_one({"_id": flow_id}, {"$set": change})

    async def find_creating(self, *, created_before: datetime, limit: int) -> list[FlowRecord]:
        query = {"state": FlowState.CREATING, "created_at": {"$lt": to_micros(created_before)}}
        with _unavailable("flow listing"):
            return [flow_from_dict(doc) async for doc in self.flows.find(query).limit(limit)]

    async def delete_flow(self, flow: FlowRecord) -> None:
        ids = [ref.job_id for ref in flow.jobs]
        with _unavailable("flow delete"):
            await self.store.events.delete_many({"job_id": {"$in": ids}})
            await self.store.jobs.delete_many({"_id": {"$in": ids}, "flow_id": flow.id})
            await self.flows.delete_one({"_id": flow.id, "state": FlowState.CREATING})
