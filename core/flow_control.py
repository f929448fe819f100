"""Flow control's domain: a job type's limits, why a claim is held back, and the port that keeps them.

A type's limits (``TypeLimits``) are its declaration's defaults (``JobType.concurrency`` …) with the
overrides ``setJobTypeLimits`` / ``pauseJobType`` wrote on top (``Overrides``, kept in the store).
A claim of a limited type is held by the claim itself (DESIGN.md §8): it either takes its slots and
its rate token, or raises ``HeldError`` and writes nothing, so the attempt is not counted.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from core.models import Job, JobId, JSONValue

if TYPE_CHECKING:
    from core.jobtypes import JobType

__all__ = [
    "OVERRIDABLE",
    "ControlStore",
    "HeldError",
    "HoldReason",
    "Overrides",
    "RateLimit",
    "TypeLimits",
    "apply_overrides",
    "declared_limits",
]

#: the fields a type's stored record may override (``None`` as a value: that limit removed)
OVERRIDABLE = ("paused", "concurrency", "concurrency_per_key", "rate_limit")
#: a type's stored record: the fields it overrides; ``rate_limit`` as ``[limit, period_seconds]``
Overrides: TypeAlias = dict[str, JSONValue]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` starts per ``period_seconds`` across all workers."""

    limit: int
    period_seconds: float


@dataclass(frozen=True, slots=True)
class TypeLimits:
    """What holds a type's claims back: a pause, a concurrency limit (total, per key), a rate."""

    paused: bool = False
    concurrency: int | None = None
    concurrency_per_key: int = 1
    rate_limit: RateLimit | None = None

    def limits(self, job: Job) -> bool:
        """Whether a claim of ``job`` has anything to take (a slot or a token) or to be refused."""
        return (
            self.paused
            or self.concurrency is not None
            or self.rate_limit is not None
            or job.concurrency_key is not None
        )


class HoldReason(enum.StrEnum):
    """Why a claim was held back (the metric's ``reason`` label)."""

    PAUSED = "paused"
    CONCURRENCY = "concurrency"
    KEY = "key"
    RATE = "rate"


class HeldError(Exception):
    """A claim held back by its type's limits: nothing was written; try again in ``retry_after``."""

    def __init__(self, reason: HoldReason, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"held back: {reason.value}")
        self.reason = reason
        self.retry_after = max(0.0, retry_after)


def declared_limits(job_type: JobType[Any]) -> TypeLimits:
    """A type's defaults, from its declaration."""
    rate = job_type.rate_limit
    return TypeLimits(
        concurrency=job_type.concurrency,
        concurrency_per_key=job_type.concurrency_per_key,
        rate_limit=None if rate is None else RateLimit(rate[0], float(rate[1])),
    )


def apply_overrides(limits: TypeLimits, overrides: Mapping[str, JSONValue] | None) -> TypeLimits:
    """``limits`` with a stored record's overrides on top (a field the record lacks: unchanged)."""
    if not overrides:
        return limits
    changes: dict[str, Any] = {}
    if "paused" in overrides:
        changes["paused"] = bool(overrides["paused"])
    if "concurrency" in overrides:
        value = overrides["concurrency"]
        changes["concurrency"] = None if value is None else int(value)  # type: ignore[arg-type]
    if "concurrency_per_key" in overrides:
        value = overrides["concurrency_per_key"]
        changes["concurrency_per_key"] = 1 if value is None else int(value)  # type: ignore[arg-type]
    if "rate_limit" in overrides:
        rate = overrides["rate_limit"]
        if isinstance(rate, list) and len(rate) == 2:
            changes["rate_limit"] = RateLimit(int(rate[0]), float(rate[1]))  # type: ignore[arg-type]
        else:
            changes["rate_limit"] = None
    return replace(limits, **changes)


def whole_seconds(period: float) -> int:
    """A rate period as the whole seconds a window of seconds can hold (rounded up: never looser)."""
    return max(1, math.ceil(period))


class ControlStore(Protocol):
    """The per-type control records, and the slots and rate tokens claims take (DESIGN.md §8).

    ``in_claim``: the store takes slots and tokens in the claim's own write (SQLite: one
    transaction), and ``take``/``extend``/``give_back`` do nothing. Otherwise (MongoDB) a claim
    ``take``s first and ``give_back``s when it did not run; a slot carries the claim's lease,
    so a dead worker's slot expires with it.
    """

    in_claim: bool

    async def read_overrides(self) -> dict[str, Overrides]:
        """Every type's stored record."""

    async def write_overrides(self, type: str, changes: Overrides) -> Overrides:
        """Merge ``changes`` into ``type``'s record (kept across restarts); the record as written."""

    async def take(self, job: Job, limits: TypeLimits, lease_until: datetime, now: datetime) -> float | None:
        """Take ``job``'s slots and a rate token, or raise ``HeldError`` holding none; the wall time
        (``time.time()``) the rate token was given, if one was."""

    async def extend(self, job_id: JobId, lease_until: datetime) -> None:
        """The claim's lease was extended: its slots last as long."""

    async def give_back(self, job_id: JobId) -> None:
        """The claim ended (or never ran): free its slots."""

    async def running(self, type: str, key: str | None, now: datetime) -> int:
        """How many slots of ``type`` (of ``key``, when given) are held now (for ``waitReason``)."""

    async def rate_spent(self, type: str, rate: RateLimit, now: datetime) -> bool:
        """Whether ``type``'s rate window has no start left now (for ``waitReason``)."""

    async def close(self) -> None: ...
