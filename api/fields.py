"""Typed shorthands for resolver fields with a description.

``@strawberry.field(description=…)`` is typed as returning ``Any``, which ``mypy --strict`` reports
as an untyped decorator; calling ``strawberry.field(resolver, description=…)`` is typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

__all__ = ["described_field", "described_mutation", "described_subscription"]

Resolver = Callable[..., Any]


def described_field(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.field(description=description)``."""
    return lambda resolver: strawberry.field(resolver, description=description)


def described_mutation(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.mutation(description=description)``."""
    return lambda resolver: strawberry.mutation(resolver, description=description)


def described_subscription(description: str) -> Callable[[Resolver], StrawberryField]:
    """``@strawberry.subscription(description=description)``."""
    return lambda resolver: strawberry.subscription(resolver, description=description)
