"""The ``JSON`` scalar: any JSON value that survives a round trip through the store's encoder."""

from __future__ import annotations

from typing import NewType

import orjson
import strawberry
from graphql import ValueNode, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP"]

JSON = NewType("JSON", object)


def _checked(value: object) -> object:
    """Refuse what the store could not encode (integers beyond 64 bits, nesting over 254 levels)."""
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise ValueError(f"not a storable JSON value: {exc}") from exc
    return value


def _parse_literal(node: ValueNode, variables: dict[str, object] | None = None) -> object:
    return _checked(value_from_ast_untyped(node, variables))


JSON_SCALAR: ScalarDefinition = strawberry.scalar(
    name="JSON",
    description="Any JSON value",
    specified_by_url="https://ecma-international.org/publications-and-standards/standards/ecma-404/",
    serialize=lambda value: value,
    parse_value=_checked,
    parse_literal=_parse_literal,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {JSON: JSON_SCALAR}
