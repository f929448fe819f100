"""The flow control mutations: ``pauseJobType``, ``resumeJobType``, ``setJobTypeLimits`` (admin only).

Mixed into the ``Mutation`` root (``FlowControlMutations``); the limits themselves are fields of
``JobType`` (``api.types``). API.md "Flow control"; how they hold: DESIGN.md §8.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated

import strawberry

from api.context import Info
from api.fields import described_mutation
from api.types import JobTypeNode, UserError
from core.controls import FlowControl, LimitChanges
from core.errors import ForbiddenError, UserFacingError
from core.flow_control import TypeLimits

__all__ = ["FlowControlMutations", "JobTypeLimitsInput", "JobTypeResult"]

JobTypeResult = Annotated[JobTypeNode | UserError, strawberry.union("JobTypeResult")]


@strawberry.input
class JobTypeLimitsInput:
    """A type's limits to override: a field left out is unchanged; a field sent as null removes that limit."""

    concurrency: int | None = strawberry.UNSET
    concurrency_per_key: int | None = strawberry.UNSET
    rate_limit: int | None = strawberry.field(
        default=strawberry.UNSET, description="starts per ratePeriodSeconds"
    )
    rate_period_seconds: float | None = strawberry.field(default=strawberry.UNSET, description="default 1")

    def changes(self) -> LimitChanges:
        """The fields sent (``None``: removed), by the service's names."""
        sent: LimitChanges = {}
        for name in ("concurrency", "concurrency_per_key", "rate_limit", "rate_period_seconds"):
            value = getattr(self, name)
            if value is not strawberry.UNSET:
                sent[name] = value
        return sent


def _controls(info: Info) -> FlowControl:
    """The service's flow control, for admins only (a user gets ``FORBIDDEN``, as ``stats`` does)."""
    if not info.context.principal.is_admin:
        raise ForbiddenError("job type flow control is for admins only")
    controls = info.context.service.controls
    if controls is None:
        raise ForbiddenError("this store keeps no flow control")
    return controls


async def _result(info: Info, type: str, change: Awaitable[TypeLimits]) -> JobTypeNode | UserError:
    try:
        limits = await change
    except UserFacingError as exc:
        return UserError.of(exc)
    return JobTypeNode.of(info.context.service.registry.get(type), limits)


@strawberry.type
class FlowControlMutations:
    @described_mutation("admin: no new starts of this type anywhere within a second; submits still accepted")
    async def pause_job_type(self, info: Info, type: str) -> JobTypeResult:
        return await _result(info, type, _controls(info).pause(type))

    @described_mutation("admin: this type's jobs start again")
    async def resume_job_type(self, info: Info, type: str) -> JobTypeResult:
        return await _result(info, type, _controls(info).resume(type))

    @described_mutation("admin: override the type's limits; takes effect at once, kept across restarts")
    async def set_job_type_limits(self, info: Info, type: str, limits: JobTypeLimitsInput) -> JobTypeResult:
        return await _result(info, type, _controls(info).set_limits(type, limits.changes()))
