"""``FastSchema``: ``JobpulseSchema`` with the GraphQL fast paths of this package put together."""

from __future__ import annotations

from typing import Any

from api.fast.documents import CheckedDocuments
from api.fast.live_render import SubscriptionExecutor
from api.fast.resolvers import install_submit_resolvers
from api.schema import JobpulseSchema

__all__ = ["FastSchema", "build_fast_schema"]


class FastSchema(CheckedDocuments, JobpulseSchema):
    """``JobpulseSchema`` with kept documents, direct submit resolvers and compiled subscription events."""

    fast_paths = True


def build_fast_schema(**options: Any) -> FastSchema:
    """A ``FastSchema`` of strawberry's ``Schema`` options (``build_schema`` gives them)."""
    schema = FastSchema(**options, execution_context_class=SubscriptionExecutor)
    install_submit_resolvers(schema)
    return schema
