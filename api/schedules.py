"""The schedule fields: ``schedule``/``schedules`` on ``Query``, the schedule mutations on ``Mutation``.

Mixed into the roots (``ScheduleQueries``, ``ScheduleMutations``); the service is the app's
``ScheduleService`` (``app.state.schedules``, made in the lifespan). API.md "Schedules (cron)".
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from api.context import Info
from api.fields import described_field, described_mutation
from api.inputs import SubmitJobInput
from api.pagination import PageInfo
from api.scalars import JSON
from api.types import JobNode, JobResult, UserError
from core.errors import UserFacingError
from core.models import JSONObject, JSONValue, Principal
from core.schedules import OverlapPolicy, Schedule, ScheduleInput, ScheduleService
from core.schedules.service import encode_cursor

__all__ = ["ScheduleMutations", "ScheduleNode", "ScheduleQueries"]

T = TypeVar("T")

strawberry.enum(OverlapPolicy, description="SKIP (default): no new job while the last one is unfinished")


def schedule_service(info: Info) -> ScheduleService:
    """The app's ``ScheduleService``."""
    service: ScheduleService = info.context.request.app.state.schedules
    return service


@strawberry.type(name="Schedule")
class ScheduleNode:
    """A cron schedule: each tick submits one job, however many processes run."""

    id: strawberry.ID
    name: str
    owner: str
    cron: str
    timezone: str
    job: JSON = strawberry.field(description="the SubmitJobInput each tick submits")
    overlap: OverlapPolicy
    catch_up: bool
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    source: strawberry.Private[Schedule]

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleNode:
        return cls(
            id=strawberry.ID(schedule.id),
            name=schedule.name,
            owner=schedule.owner,
            cron=schedule.cron,
            timezone=schedule.timezone,
            job=JSON(schedule.job),
            overlap=schedule.overlap,
            catch_up=schedule.catch_up,
            paused=schedule.paused,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
            source=schedule,
        )

    @described_field("the job the last tick (or triggerSchedule) submitted")
    async def last_job(self, info: Info) -> JobNode | None:
        if self.source.last_job_id is None:
            return None
        job = await info.context.service.get(info.context.principal, self.source.last_job_id)
        return None if job is None else JobNode.of(job)

    @described_field("the next ticks (up to five), for previews")
    def upcoming(self, info: Info, count: int = 5) -> list[datetime]:
        schedules = schedule_service(info)
        start = self.source.next_run_at
        if start is None or self.source.paused:
            return []
        spec = schedules.spec(self.source.cron, self.source.timezone)
        return [start, *spec.preview(start, max(0, min(count, 20)) - 1)]

    @described_field("the cron expression in words")
    def description(self, info: Info) -> str:
        return schedule_service(info).spec(self.source.cron, self.source.timezone).describe()


ScheduleResult = Annotated[ScheduleNode | UserError, strawberry.union("ScheduleResult")]


@strawberry.type
class ScheduleEdge:
    cursor: str
    node: ScheduleNode


@strawberry.type
class ScheduleConnection:
    """One page of schedules, oldest first."""

    edges: list[ScheduleEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class CronPreview:
    """What a cron expression means: in words, and its next ticks."""

    description: str
    next_runs: list[datetime]


CronPreviewResult = Annotated[CronPreview | UserError, strawberry.union("CronPreviewResult")]


@strawberry.input(name="ScheduleInput")
class ScheduleInputGql:
    """A schedule to create, or the new settings of one."""

    name: str = strawberry.field(description="unique per owner")
    cron: str = strawberry.field(
        description="five fields (minute hour day month weekday), or six with seconds first"
    )
    job: SubmitJobInput = strawberry.field(
        description="what each tick submits (its idempotencyKey is ignored)"
    )
    timezone: str = strawberry.field(default="UTC", description="IANA name")
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catch_up: bool = strawberry.field(
        default=False,
        description="after downtime: false = skip missed ticks; true = run the last missed tick once",
    )

    def to_input(self) -> ScheduleInput:
        return ScheduleInput(
            name=self.name,
            cron=self.cron,
            job=_template(self.job),
            timezone=self.timezone,
            overlap=self.overlap,
            catch_up=self.catch_up,
        )


def _json(value: object) -> JSONValue:
    if isinstance(value, enum.Enum):
        return _json(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value  # type: ignore[return-value]  # the JSON scalar and plain input values


def _template(job: SubmitJobInput) -> JSONObject:
    """The ``SubmitJobInput`` as JSON (camelCase keys, unset fields left out), as a schedule keeps it."""
    definition = get_object_definition(type(job), strict=True)
    template: JSONObject = {}
    for field in definition.fields:
        value = getattr(job, field.python_name)
        if value is not None and field.python_name != "idempotency_key":
            template[field.graphql_name or to_camel_case(field.python_name)] = _json(value)
    return template


async def _result(action: Awaitable[Schedule]) -> ScheduleNode | UserError:
    try:
        return ScheduleNode.of(await action)
    except UserFacingError as exc:
        return UserError.of(exc)


@strawberry.type
class ScheduleQueries:
    @described_field("the schedule, or null if it does not exist or is not yours")
    async def schedule(self, info: Info, id: strawberry.ID) -> ScheduleNode | None:
        found = await schedule_service(info).get(info.context.principal, str(id))
        return None if found is None else ScheduleNode.of(found)

    @described_field("oldest first; yours (an admin: everyone's)")
    async def schedules(self, info: Info, first: int = 50, after: str | None = None) -> ScheduleConnection:
        principal: Principal = info.context.principal
        service = schedule_service(info)
        page = await service.page(principal, first, after)
        edges = [ScheduleEdge(cursor=encode_cursor(s), node=ScheduleNode.of(s)) for s in page.schedules]
        page_info = PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return ScheduleConnection(
            edges=edges, page_info=page_info, total_count=await service.count(principal)
        )

    @described_field("a cron expression in words and its next five ticks (VALIDATION on cron or timezone)")
    def cron_preview(self, info: Info, cron: str, timezone: str = "UTC") -> CronPreviewResult:
        _ = info.context.principal
        service = schedule_service(info)
        try:
            spec = service.spec(cron, timezone)
        except UserFacingError as exc:
            return UserError.of(exc)
        return CronPreview(description=spec.describe(), next_runs=spec.preview(service.clock(), 5))


@strawberry.type
class ScheduleMutations:
    @described_mutation("a reused name is VALIDATION on name; a bad cron, time zone or job: its field")
    async def create_schedule(self, info: Info, input: ScheduleInputGql) -> ScheduleResult:
        return await _result(schedule_service(info).create(info.context.principal, input.to_input()))

    @described_mutation("new settings; the next tick is recomputed when the cron or time zone changed")
    async def update_schedule(self, info: Info, id: strawberry.ID, input: ScheduleInputGql) -> ScheduleResult:
        service = schedule_service(info)
        return await _result(service.update(info.context.principal, str(id), input.to_input()))

    @described_mutation("no tick fires until resumed")
    async def pause_schedule(self, info: Info, id: strawberry.ID) -> ScheduleResult:
        return await _result(schedule_service(info).pause(info.context.principal, str(id)))

    @described_mutation("fires again from the next tick after now; ticks while paused never do")
    async def resume_schedule(self, info: Info, id: strawberry.ID) -> ScheduleResult:
        return await _result(schedule_service(info).resume(info.context.principal, str(id)))

    @described_mutation("the schedule as it was; its jobs stay")
    async def delete_schedule(self, info: Info, id: strawberry.ID) -> ScheduleResult:
        return await _result(schedule_service(info).delete(info.context.principal, str(id)))

    @described_mutation("one job now, outside the cron")
    async def trigger_schedule(self, info: Info, id: strawberry.ID) -> JobResult:
        try:
            return JobNode.of(await schedule_service(info).trigger(info.context.principal, str(id)))
        except UserFacingError as exc:
            return UserError.of(exc)
