"""The ``Mutation`` root: submit, cancel, retry; refusals the caller can fix come back as ``UserError``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import strawberry
from graphql import GraphQLResolveInfo

from api.context import Context, Info
from api.external import ExternalMutations
from api.fields import described_mutation
from api.inputs import SubmitJobInput, submit_request
from api.schedules import ScheduleMutations
from api.types import JobNode, JobResult, UserError
from core.errors import ForbiddenError, UserFacingError
from core.models import Job

__all__ = ["DIRECT_RESOLVERS", "Mutation"]


async def _result(action: Awaitable[Job]) -> JobNode | UserError:
    try:
        return JobNode.of(await action)
    except UserFacingError as exc:
        return UserError.of(exc)


@strawberry.type
class Mutation(ExternalMutations, ScheduleMutations):
    @strawberry.mutation
    async def submit_job(self, info: Info, input: SubmitJobInput) -> JobResult:
        return await _result(info.context.service.submit(info.context.principal, input.to_request()))

    @described_mutation("one result per input, same order; each input stands alone")
    async def submit_jobs(self, info: Info, inputs: list[SubmitJobInput]) -> list[JobResult]:
        outcomes = await info.context.service.submit_many(
            info.context.principal, [item.to_request() for item in inputs]
        )
        return [UserError.of(o) if isinstance(o, UserFacingError) else JobNode.of(o) for o in outcomes]

    @described_mutation("PENDING: never runs; PROCESSING: the handler is cancelled")
    async def cancel_job(self, info: Info, id: strawberry.ID) -> JobResult:
        return await _result(info.context.service.cancel(info.context.principal, str(id)))

    @described_mutation("FAILED or CANCELLED only: back to PENDING, attempts reset")
    async def retry_job(self, info: Info, id: strawberry.ID) -> JobResult:
        return await _result(info.context.service.retry(info.context.principal, str(id)))

    @described_mutation("admin only: retry every job in a type's dead-letter queue; returns how many moved")
    async def redrive_dead_letters(self, info: Info, type: str) -> int:
        if not info.context.principal.is_admin:
            raise ForbiddenError("redriving dead letters is for admins only")
        return await info.context.service.redrive_dead_letters(type)


# The submit mutations are the API's hot path (bench figures 2 and 3): graphql-core calls these in
# place of strawberry's wrappers of the methods above (``build_schema`` installs them), reading the
# arguments as graphql-core coerced them instead of converting each input to a ``SubmitJobInput``
# first. Same service calls, same results, same errors; the methods above still declare the
# fields (and the schema), and tests check both give the same answers.


async def _submit_job(
    _root: object, info: GraphQLResolveInfo[Context], input: Mapping[str, Any]
) -> JobResult:
    context = info.context
    return await _result(context.service.submit(context.principal, submit_request(input)))


async def _submit_jobs(
    _root: object, info: GraphQLResolveInfo[Context], inputs: list[Mapping[str, Any]]
) -> list[JobResult]:
    context = info.context
    outcomes = await context.service.submit_many(context.principal, [submit_request(i) for i in inputs])
    return [UserError.of(o) if isinstance(o, UserFacingError) else JobNode.of(o) for o in outcomes]


#: graphql-core resolvers of ``Mutation`` fields, by field name, that replace strawberry's
DIRECT_RESOLVERS: dict[str, Callable[..., Awaitable[Any]]] = {
    "submitJob": _submit_job,
    "submitJobs": _submit_jobs,
}
