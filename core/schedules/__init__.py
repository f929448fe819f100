"""Cron schedules: one job per tick, on any number of processes (DESIGN.md §7).

``model`` (the record and its store port), ``cron`` (cronsim in a time zone), ``service`` (the
client actions and the tick).
"""

from core.schedules.cron import CronSpec
from core.schedules.model import OverlapPolicy, Schedule, ScheduleStore
from core.schedules.service import ScheduleInput, SchedulePage, ScheduleService, TickOutcome

__all__ = [
    "CronSpec",
    "OverlapPolicy",
    "Schedule",
    "ScheduleInput",
    "SchedulePage",
    "ScheduleService",
    "ScheduleStore",
    "TickOutcome",
]
