"""Typed shorthands for resolver fields with a description.

``@strawberry.field(description=…)`` is typed as returning ``Any``, which ``mypy --strict`` reports
as an untyped decorator; calling ``strawberry.field(resolver, description=…)`` is typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

__all__ = ["LIVE_VALUE", "described_field", "described_mutation", "described_subscription", "live_field"]

Resolver = Callable[..., Any]

#: a resolver field's metadata key: its value from the source object alone, without awaiting
#: (``api.fast.live_render`` renders events with it; it raises ``LookupError`` when only the
#: resolver can answer, and that event goes to graphql-core)
LIVE_VALUE = "jobpulse-live-value"


def described_field(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.field(description=description)``."""
    return lambda resolver: strawberry.field(resolver, description=description)


def live_field(description: str, now: Callable[[Any], Any]) -> Callable[[Resolver], StrawberryField]:
    """``described_field`` whose value ``now(source)`` gives when no await is needed (``LIVE_VALUE``)."""
    return lambda resolver: strawberry.field(resolver, description=description, metadata={LIVE_VALUE: now})


def described_mutation(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.mutation(description=description)``."""
    return lambda resolver: strawberry.mutation(resolver, description=description)


def described_subscription(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.subscription(description=description)``."""
    return lambda resolver: strawberry.subscription(resolver, description=description)
