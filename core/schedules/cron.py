"""Cron expressions in a time zone: validation, the next tick, a preview, a description (cronsim).

cronsim steps the expression (five fields, or six with seconds first) and already fires a time
the spring-forward gap skips once, at the first valid instant after it. Its fall-back rule
(wildcard hours fire in both passes of the repeated hour) is the one this module changes: a
tick whose wall-clock time is not later than the previous tick's is dropped, so each wall-clock
time fires at most once (DESIGN.md §7, API.md "Schedules").
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from core.errors import ValidationError

__all__ = ["CronSpec"]

#: stepping stops here: an expression that never fires again (Feb 30) has no next tick
_MAX_STEPS = 10_000
#: ``next_after`` answers kept per expression
_REMEMBERED = 256


class CronSpec:
    """A validated cron expression and IANA time zone; ``next_after`` steps it."""

    def __init__(self, cron: str, timezone: str) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"unknown time zone {timezone!r}", field="timezone") from exc
        fields = cron.split()
        if len(fields) not in (5, 6):
            raise ValidationError(
                f"a cron expression has five or six fields, got {len(fields)}", field="cron"
            )
        self.cron = " ".join(fields)
        self.timezone = timezone
        #: recent answers of ``next_after``: schedules sharing an expression step from the same ticks
        self._next: dict[datetime, datetime | None] = {}
        try:
            CronSim(self.cron, datetime.now(self.zone))
        except (CronSimError, ValueError) as exc:
            raise ValidationError(f"invalid cron expression {cron!r}: {exc}", field="cron") from exc

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after ``after`` (UTC), or ``None`` when there is none."""
        try:
            return self._next[after]
        except KeyError:
            pass
        if len(self._next) >= _REMEMBERED:
            self._next.clear()
        found = self._next[after] = self._step(after)
        return found

    def _step(self, after: datetime) -> datetime | None:
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None)
        try:
            ticks = CronSim(self.cron, local)
            for _ in range(_MAX_STEPS):
                tick = next(ticks)
                # The repeated hour of a fall-back: a wall-clock time already passed does not fire again.
                if tick.replace(tzinfo=None) > wall and tick > after:
                    return tick.astimezone(UTC)
        except StopIteration:
            return None
        return None

    def preview(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` ticks after ``after`` (fewer if it stops firing), in UTC."""
        ticks: list[datetime] = []
        at: datetime | None = after
        while at is not None and len(ticks) < count:
            at = self.next_after(at)
            if at is not None:
                ticks.append(at)
        return ticks

    def describe(self) -> str:
        """The expression in words ("At 02:30 every day"), for previews."""
        try:
            return CronSim(self.cron, datetime.now(self.zone)).explain()
        except Exception:  # explain() does not cover every expression cronsim accepts
            return self.cron
