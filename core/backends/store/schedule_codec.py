"""Schedules as plain dicts (times as integer microseconds), the shape both schedule stores keep."""

from __future__ import annotations

from typing import Any

from core.cursors import from_micros, to_micros
from core.schedules.model import OverlapPolicy, Schedule

__all__ = ["schedule_from_dict", "schedule_to_dict"]


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """Every field; times as microseconds since the epoch."""
    return {
        "id": schedule.id,
        "name": schedule.name,
        "owner": schedule.owner,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job": schedule.job,
        "overlap": schedule.overlap.value,
        "catch_up": schedule.catch_up,
        "paused": schedule.paused,
        "next_run_us": None if schedule.next_run_at is None else to_micros(schedule.next_run_at),
        "last_run_us": None if schedule.last_run_at is None else to_micros(schedule.last_run_at),
        "last_job_id": schedule.last_job_id,
        "version": schedule.version,
        "created_us": to_micros(schedule.created_at),
        "updated_us": to_micros(schedule.updated_at),
    }


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    return Schedule(
        id=data["id"],
        name=data["name"],
        owner=data["owner"],
        cron=data["cron"],
        timezone=data["timezone"],
        job=data["job"],
        overlap=OverlapPolicy(data["overlap"]),
        catch_up=bool(data["catch_up"]),
        paused=bool(data["paused"]),
        next_run_at=None if data["next_run_us"] is None else from_micros(data["next_run_us"]),
        last_run_at=None if data["last_run_us"] is None else from_micros(data["last_run_us"]),
        last_job_id=data["last_job_id"],
        version=data["version"],
        created_at=from_micros(data["created_us"]),
        updated_at=from_micros(data["updated_us"]),
    )
