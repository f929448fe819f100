"""``Schedule`` (a cron job's record), ``OverlapPolicy`` and ``ScheduleStore``, the port that keeps them."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from core.models import JobId, JSONObject, utcnow

__all__ = ["OverlapPolicy", "Schedule", "ScheduleCursor", "ScheduleStore"]


class OverlapPolicy(enum.StrEnum):
    SKIP = "SKIP"  # no new job while the last one is unfinished
    ALLOW = "ALLOW"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored. ``job`` is the ``SubmitJobInput`` each tick submits, as JSON."""

    id: str
    name: str
    owner: str
    cron: str
    timezone: str
    job: JSONObject
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catch_up: bool = False
    paused: bool = False
    #: the next tick to take; ``None`` when the expression never fires again
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: JobId | None = None
    version: int = 1
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def job_type(self) -> str:
        value = self.job.get("type")
        return value if isinstance(value, str) else ""


#: (created_at, id) of the last schedule of a page; listings are oldest first
ScheduleCursor = tuple[datetime, str]


class ScheduleStore(Protocol):
    """Durable schedules. Every change is a conditional write on ``version``."""

    async def insert(self, schedule: Schedule) -> bool:
        """Store a new schedule; ``False`` (nothing written) when its owner already has its name."""

    async def get(self, schedule_id: str) -> Schedule | None: ...

    async def update(self, schedule: Schedule, expected_version: int) -> Schedule | None:
        """Write ``schedule`` if the stored one still has ``expected_version``; ``None`` otherwise
        (someone else wrote first, or it was deleted). A name its owner gives another schedule
        raises ``ValidationError`` on ``name``."""

    async def update_many(
        self, items: Sequence[tuple[Schedule, int]]
    ) -> list[Schedule | None | BaseException]:
        """``update`` of each (schedule, expected version), as one write where the store can: one
        answer per item (the written schedule, ``None`` for a lost race, or the item's error)."""

    async def delete(self, schedule_id: str) -> bool: ...

    async def due(self, before: datetime, limit: int) -> list[Schedule]:
        """Unpaused schedules whose ``next_run_at`` is at or before ``before``, earliest first."""

    async def next_due(self) -> datetime | None:
        """The earliest ``next_run_at`` of an unpaused schedule."""

    async def list(self, owner: str | None, first: int, after: ScheduleCursor | None) -> list[Schedule]:
        """Up to ``first`` schedules (of ``owner``, or everyone's), oldest first, after ``after``."""

    async def count(self, owner: str | None) -> int: ...

    async def get_many(self, schedule_ids: Sequence[str]) -> dict[str, Schedule]: ...
