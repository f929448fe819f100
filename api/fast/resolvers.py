"""The submit mutations resolved from graphql-core's coerced arguments.

``submitJob`` and ``submitJobs`` are the API's hot path. Strawberry's resolver of a field converts
every argument to its Python type with a generic walk (annotations resolved, names converted,
each value dispatched on its type) and builds its own ``Info``. These resolvers, installed by
``install_submit_resolvers`` in place of strawberry's, build each ``SubmitJobInput`` straight
from the coerced value (every field is a leaf graphql-core has already checked, defaults filled)
and call the same ``api.mutations`` functions the ``Mutation`` methods call, which read only
``info.context``: same service calls, same results, same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import GraphQLResolveInfo
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from api import mutations
from api.context import Context
from api.inputs import SubmitJobInput
from api.types import JobResult

__all__ = ["install_submit_resolvers", "submit_input"]


def _fields(input_type: type) -> tuple[tuple[str, str], ...]:
    """(GraphQL name, Python name) of each field of ``input_type`` (names in camelCase, as in the schema)."""
    definition = get_object_definition(input_type, strict=True)
    return tuple((f.graphql_name or to_camel_case(f.python_name), f.python_name) for f in definition.fields)


_SUBMIT_FIELDS = _fields(SubmitJobInput)


def submit_input(value: Mapping[str, Any]) -> SubmitJobInput:
    """The ``SubmitJobInput`` strawberry would build from graphql-core's coerced value."""
    return SubmitJobInput(**{python: value[name] for name, python in _SUBMIT_FIELDS if name in value})


async def _submit_job(
    _root: object, info: GraphQLResolveInfo[Context], input: Mapping[str, Any]
) -> JobResult:
    return await mutations.submit_one(info.context, submit_input(input))


async def _submit_jobs(
    _root: object, info: GraphQLResolveInfo[Context], inputs: list[Mapping[str, Any]]
) -> list[JobResult]:
    return await mutations.submit_many(info.context, [submit_input(i) for i in inputs])


def install_submit_resolvers(schema: strawberry.Schema) -> None:
    """Put the resolvers above in place of strawberry's on ``schema``'s ``Mutation`` fields."""
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    mutation_type.fields["submitJob"].resolve = _submit_job
    mutation_type.fields["submitJobs"].resolve = _submit_jobs
