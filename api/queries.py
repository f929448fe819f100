"""The ``Query`` root: a job, a page of jobs, the job types, and (admins only) the stats."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.fields import described_field
from api.flows import FlowQueries
from api.inputs import JobFilterInput
from api.operations import OperationsQuery
from api.pagination import JobConnection
from api.stats import JobStats
from api.streams import RESYNC_WINDOW_MICROS
from api.types import JobNode, JobTypeNode
from core.cursors import EventCursor, to_micros
from core.errors import ForbiddenError
from core.ports import JobFilter

__all__ = ["Query"]


@strawberry.type
class Query(OperationsQuery, FlowQueries):
    @described_field("the job, or null if it does not exist or is not yours")
    async def job(self, info: Info, id: strawberry.ID) -> JobNode | None:
        job = await info.context.service.get(info.context.principal, str(id))
        return JobNode.of(job) if job is not None else None

    @described_field("newest first")
    async def jobs(
        self,
        info: Info,
        filter: JobFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> JobConnection:
        principal = info.context.principal
        scoped = info.context.service.scope(principal, filter.to_filter() if filter else JobFilter())
        page = await info.context.service.list(principal, scoped, 20 if first is None else first, after)
        return JobConnection.of(page, after=after, principal=principal, filter=scoped)

    @strawberry.field
    def job_types(self, info: Info) -> list[JobTypeNode]:
        _ = info.context.principal
        return [JobTypeNode.of(job_type) for job_type in info.context.service.registry]

    @described_field(
        "a jobEvents cursor for the present: subscribe with it before reading jobs, and every change "
        "after the read arrives (it points a few seconds back, so changes still committing are not "
        "missed; drop events older than the version you hold)"
    )
    def event_cursor(self, info: Info) -> str:
        _ = info.context.principal
        now = to_micros(info.context.service.clock())
        return EventCursor(now - RESYNC_WINDOW_MICROS, "", 0).encode()

    @described_field("admin only")
    async def stats(self, info: Info) -> JobStats:
        if not info.context.principal.is_admin:
            raise ForbiddenError("stats are for admins only")
        service = info.context.service
        return JobStats.of(await service.stats(), service.registry.names)
