"""Workflows in GraphQL: ``Flow`` and its fields, ``flow``/``flows``, ``submitFlow``/``cancelFlow``/
``retryFlow`` and ``flowUpdated``, as mixins of the ``Query``, ``Mutation`` and ``Subscription`` roots."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.fields import described_field, described_mutation, described_subscription
from api.inputs import SubmitJobInput
from api.pagination import PageInfo
from api.scalars import JSON
from api.types import JobNode, UserError
from core.errors import JobNotFoundError, UserFacingError, ValidationError
from core.flows import FlowItem, Flows, FlowView
from core.models import Job, JobEvent, Principal
from core.ports import Resync, owner_topic
from core.service import JobService

__all__ = ["FlowMutations", "FlowNode", "FlowQueries", "FlowSubscriptions", "flows_of"]


@strawberry.enum
class FlowStatus(enum.Enum):
    """RUNNING until every job is final: COMPLETED when all did, FAILED when any failed, CANCELLED
    after ``cancelFlow``."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


def flows_of(service: JobService) -> Flows:
    if service.flows is None:
        raise ValidationError("this server's store keeps no flows", field="id")
    return service.flows


@strawberry.type(name="FlowJob")
class FlowJobNode:
    """One job of a flow, by its key."""

    key: str
    job: JobNode
    after: list[str] = strawberry.field(description="keys of this flow's jobs it runs after")


@strawberry.type(name="Flow")
class FlowNode:
    """Jobs submitted together as one graph, watched as one."""

    id: strawberry.ID
    name: str | None
    owner: str
    status: FlowStatus = strawberry.field(
        description="COMPLETED when every job did; FAILED when any job FAILED and none can still run"
    )
    progress: float = strawberry.field(description="mean progress of its jobs")
    jobs: list[FlowJobNode]
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, view: FlowView) -> FlowNode:
        record = view.record
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            owner=record.owner,
            status=FlowStatus(view.status),
            progress=view.progress,
            jobs=[
                FlowJobNode(key=ref.key, job=JobNode.of(view.jobs[ref.key]), after=list(ref.after))
                for ref in record.jobs
                if ref.key in view.jobs
            ],
            created_at=record.created_at,
            completed_at=view.completed_at,
        )


FlowResult = Annotated[FlowNode | UserError, strawberry.union("FlowResult")]


@strawberry.type
class FlowEdge:
    cursor: str
    node: FlowNode


@strawberry.type
class FlowConnection:
    edges: list[FlowEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class FlowJobInput:
    """One job of a ``submitFlow``."""

    key: str = strawberry.field(description="local name inside this flow")
    job: SubmitJobInput = strawberry.field(description="its dependsOn may name ids of existing jobs")
    after: list[str] | None = strawberry.field(
        default=None, description="keys of this flow's jobs it depends on"
    )


@strawberry.input
class SubmitFlowInput:
    name: str | None = None
    jobs: list[FlowJobInput]


async def _flow_result(action: Awaitable[FlowView]) -> FlowNode | UserError:
    try:
        return FlowNode.of(await action)
    except UserFacingError as exc:
        return UserError.of(exc)


@strawberry.type
class FlowQueries:
    @described_field("a flow, by id (null if missing or another owner's)")
    async def flow(self, info: Info, id: strawberry.ID) -> FlowNode | None:
        view = await flows_of(info.context.service).get(info.context.principal, str(id))
        return None if view is None else FlowNode.of(view)

    @described_field("newest first, owner-scoped (admin: all)")
    async def flows(
        self,
        info: Info,
        status: list[FlowStatus] | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> FlowConnection:
        first = 20 if first is None else first
        if not 0 <= first <= 200:
            raise ValidationError(f"first must be between 0 and 200, got {first}", field="first")
        service = flows_of(info.context.service)
        statuses = None if status is None else frozenset(s.value for s in status)
        views, more = await service.list(info.context.principal, statuses, first, after)
        edges = [FlowEdge(cursor=view.record.id, node=FlowNode.of(view)) for view in views]
        page = PageInfo(
            has_next_page=more,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return FlowConnection(
            edges=edges, page_info=page, total_count=await service.count(info.context.principal)
        )


@strawberry.type
class FlowMutations:
    @described_mutation(
        "all jobs or none: a cycle or an unknown key is VALIDATION, a refused job its own code; "
        "`field` names the key; nothing is created"
    )
    async def submit_flow(self, info: Info, input: SubmitFlowInput) -> FlowResult:
        items = [FlowItem(j.key, j.job.to_request(), tuple(j.after or ())) for j in input.jobs]
        service = flows_of(info.context.service)
        principal = info.context.principal
        try:
            await info.context.service.admit(principal, len(items))  # each job counts
        except UserFacingError as exc:
            return UserError.of(exc)
        return await _flow_result(service.submit_flow(principal, input.name, items))

    @described_mutation("every unfinished job of the flow (WAITING ones too) ends CANCELLED")
    async def cancel_flow(self, info: Info, id: strawberry.ID) -> FlowResult:
        return await _flow_result(flows_of(info.context.service).cancel(info.context.principal, str(id)))

    @described_mutation("retries its FAILED and CANCELLED jobs; their dependents wait again")
    async def retry_flow(self, info: Info, id: strawberry.ID) -> FlowResult:
        return await _flow_result(flows_of(info.context.service).retry(info.context.principal, str(id)))


async def flow_updates(flows: Flows, caller: Principal, flow_id: str) -> AsyncGenerator[FlowView, None]:
    """The flow as it is, then again on every change of any of its jobs; ends after a final status.

    Subscribes to the owner's events first (so no change is missed), then reads the flow.
    """
    record = await flows.store.get_flow(flow_id)
    if record is None:
        raise JobNotFoundError(f"flow {flow_id} not found", field="id")
    async with flows.service.bus.subscribe([owner_topic(record.owner)]) as subscription:
        view = await flows.get(caller, flow_id)
        if view is None:
            raise JobNotFoundError(f"flow {flow_id} not found", field="id")
        yield view
        if view.status != "RUNNING":
            return
        keys = {ref.job_id: ref.key for ref in view.record.jobs}
        jobs = dict(view.jobs)
        async for message in subscription:
            if isinstance(message, JobEvent):
                key = keys.get(message.job_id)
                if key is None or key not in jobs or message.job.version <= jobs[key].version:
                    continue
                jobs[key] = message.job
                view = FlowView(view.record, jobs)
                if all(job.is_terminal for job in jobs.values()):
                    view = await flows.get(caller, flow_id) or view  # the record (cancelled?) and payloads
                    jobs = dict(view.jobs)
            elif isinstance(message, Resync):
                view = await flows.get(caller, flow_id) or view
                jobs = dict(view.jobs)
            else:
                continue
            yield view
            if view.status != "RUNNING":
                return


@strawberry.type
class FlowSubscriptions:
    @described_subscription(
        "the flow as it is, then again on every change of any of its jobs; completes after a final status"
    )
    async def flow_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[FlowNode, None]:
        updates = flow_updates(flows_of(info.context.service), info.context.principal, str(id))
        try:
            async for view in updates:
                yield FlowNode.of(view)
        finally:
            await updates.aclose()


# -- the workflow fields of ``Job`` (api/types.py's resolvers call these) ------------------------


async def _jobs(info: Info, ids: list[str]) -> list[JobNode]:
    found = await info.context.service.store.get_many(ids)
    principal = info.context.principal
    return [JobNode.of(found[i]) for i in ids if i in found and principal.can_see(found[i])]


async def dependencies_of(info: Info, job: Job) -> list[JobNode]:
    return await _jobs(info, list(job.depends_on)) if job.depends_on else []


async def dependents_of(info: Info, job: Job) -> list[JobNode]:
    service = info.context.service
    if service.flows is None:
        return []
    principal = info.context.principal
    found = await service.flows.store.dependents(job.id, waiting_only=False)
    return [JobNode.of(dependent) for dependent in found if principal.can_see(dependent)]


async def flow_of(info: Info, job: Job) -> FlowNode | None:
    service = info.context.service
    if job.flow_id is None or service.flows is None:
        return None
    view = await service.flows.get(info.context.principal, job.flow_id)
    return None if view is None else FlowNode.of(view)


async def dependency_results_of(info: Info, job: Job) -> JSON | None:
    service = info.context.service
    if not job.depends_on or service.flows is None:
        return None
    return JSON(await service.flows.dependency_results(job))
