"""The GraphQL schema: roots, scalars, limits and error codes, put together."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api import fast
from api.errors import ErrorCodes, log_unexpected
from api.fast.documents import CheckedDocuments
from api.fast.live_render import SubscriptionExecutor
from api.fast.resolvers import install_submit_resolvers
from api.limits import limit_extensions
from api.mutations import Mutation
from api.queries import Query
from api.scalars import SCALAR_MAP
from api.subscriptions import Subscription
from core.settings import Settings

__all__ = ["FastSchema", "JobpulseSchema", "build_schema"]


class JobpulseSchema(strawberry.Schema):
    """Logs only the errors that are bugs or outages: refusals are the client's business."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_unexpected(errors)


class FastSchema(CheckedDocuments, JobpulseSchema):
    """``JobpulseSchema`` with the fast paths of ``api.fast`` (same answers, less work)."""


def build_schema(settings: Settings, *, fast_paths: bool = True) -> JobpulseSchema:
    """The schema with the settings' query limits; ``jobpulse export-schema`` prints its SDL.

    With ``fast_paths`` (and the library versions they were tested on, ``api.fast.enabled``) a
    ``FastSchema``; otherwise strawberry's stock execution throughout.
    """
    extensions: list[Any] = [*limit_extensions(settings), ErrorCodes]
    typed: list[type[SchemaExtension]] = extensions
    common: dict[str, Any] = {
        "query": Query,
        "mutation": Mutation,
        "subscription": Subscription,
        "extensions": typed,
        "config": StrawberryConfig(scalar_map=SCALAR_MAP),
    }
    if not (fast_paths and fast.enabled()):
        return JobpulseSchema(**common)
    schema = FastSchema(**common, execution_context_class=SubscriptionExecutor)
    install_submit_resolvers(schema)
    return schema
