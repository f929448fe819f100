"""The Relay connection of jobs: newest first, cursors from ``core.cursors.JobCursor``."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.types import JobNode
from core.cursors import JobCursor, to_micros
from core.models import Job, Principal
from core.ports import JobFilter
from core.service import JobPage

__all__ = ["JobConnection", "JobEdge", "PageInfo", "job_cursor"]


def job_cursor(job: Job) -> str:
    return JobCursor(to_micros(job.created_at), job.id).encode()


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class JobEdge:
    cursor: str
    node: JobNode


@strawberry.type
class JobConnection:
    """One page of jobs; ``totalCount`` counts every job the filter matches."""

    edges: list[JobEdge]
    page_info: PageInfo
    principal: strawberry.Private[Principal]
    filter: strawberry.Private[JobFilter]

    @classmethod
    def of(
        cls, page: JobPage, *, after: str | None, principal: Principal, filter: JobFilter
    ) -> JobConnection:
        edges = [JobEdge(cursor=job_cursor(job), node=JobNode.of(job)) for job in page.jobs]
        info = PageInfo(
            has_next_page=page.has_next_page,
            # Forward-only paging: a page that starts after a cursor has something before it.
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return cls(edges=edges, page_info=info, principal=principal, filter=filter)

    @strawberry.field
    async def total_count(self, info: Info) -> int:
        # Counted only when asked for: it is a second query.
        return await info.context.service.count(self.principal, self.filter)
