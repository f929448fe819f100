"""The ``Mutation`` root: submit, cancel, retry; refusals the caller can fix come back as ``UserError``."""

from __future__ import annotations

from collections.abc import Awaitable

import strawberry

from api.context import Context, Info
from api.external import ExternalMutations
from api.fields import described_mutation
from api.flow_control import FlowControlMutations
from api.flows import FlowMutations
from api.inputs import JobFilterInput, SubmitJobInput
from api.schedules import ScheduleMutations
from api.types import JobNode, JobResult, UserError
from core.errors import ForbiddenError, RateLimitedError, UserFacingError
from core.models import Job

__all__ = ["Mutation", "submit_many", "submit_one"]


async def _result(action: Awaitable[Job]) -> JobNode | UserError:
    try:
        return JobNode.of(await action)
    except UserFacingError as exc:
        return UserError.of(exc)


async def _admitted_submit(context: Context, input: SubmitJobInput) -> Job:
    await context.service.admit(context.principal)
    return await context.service.submit(context.principal, input.to_request())


async def submit_one(context: Context, input: SubmitJobInput) -> JobResult:
    """``submitJob``: the job, or the refusal as a ``UserError``."""
    return await _result(_admitted_submit(context, input))


async def submit_many(context: Context, inputs: list[SubmitJobInput]) -> list[JobResult]:
    """``submitJobs``: one result per input, same order; over the rate limit, every input is refused
    (each counts) and nothing is created."""
    principal = context.principal
    try:
        await context.service.admit(principal, len(inputs))
    except RateLimitedError as exc:
        return [UserError.of(exc) for _ in inputs]
    outcomes = await context.service.submit_many(principal, [item.to_request() for item in inputs])
    return [UserError.of(o) if isinstance(o, UserFacingError) else JobNode.of(o) for o in outcomes]


@strawberry.type
class Mutation(ExternalMutations, FlowMutations, ScheduleMutations, FlowControlMutations):
    # The submit fields run the functions above; on the fast path (``api.fast.resolvers``)
    # graphql-core calls them without strawberry's argument conversion.
    @strawberry.mutation
    async def submit_job(self, info: Info, input: SubmitJobInput) -> JobResult:
        return await submit_one(info.context, input)

    @described_mutation("one result per input, same order; each input stands alone")
    async def submit_jobs(self, info: Info, inputs: list[SubmitJobInput]) -> list[JobResult]:
        return await submit_many(info.context, inputs)

    @described_mutation("PENDING: never runs; PROCESSING: the handler is cancelled")
    async def cancel_job(self, info: Info, id: strawberry.ID) -> JobResult:
        return await _result(info.context.service.cancel(info.context.principal, str(id)))

    @described_mutation("FAILED or CANCELLED only: back to PENDING, attempts reset")
    async def retry_job(self, info: Info, id: strawberry.ID) -> JobResult:
        return await _result(info.context.service.retry(info.context.principal, str(id)))

    @described_mutation(
        "cancel every job the filter matches (yours; an admin's: anyone's); how many were cancelled"
    )
    async def cancel_jobs(self, info: Info, filter: JobFilterInput) -> int:
        return await info.context.service.cancel_matching(info.context.principal, filter.to_filter())

    @described_mutation(
        "retry the FAILED and CANCELLED jobs the filter matches; how many went back to PENDING"
    )
    async def retry_jobs(self, info: Info, filter: JobFilterInput) -> int:
        return await info.context.service.retry_matching(info.context.principal, filter.to_filter())

    @described_mutation("admin only: retry every job in a type's dead-letter queue; returns how many moved")
    async def redrive_dead_letters(self, info: Info, type: str) -> int:
        if not info.context.principal.is_admin:
            raise ForbiddenError("redriving dead letters is for admins only")
        return await info.context.service.redrive_dead_letters(type)
