"""Jobs and events as plain dicts (times as integer microseconds), for every backend's wire format.

The payload is kept apart: it is immutable, can be large, and events never carry it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson

from core.cursors import from_micros, to_micros
from core.models import (
    DependencyFailure,
    Job,
    JobEvent,
    JobEventKind,
    JobStatus,
    JSONObject,
    JSONValue,
    LogLevel,
)

__all__ = [
    "dumps",
    "event_from_dict",
    "event_to_dict",
    "job_from_dict",
    "job_to_dict",
    "loads",
    "micros",
]

_TIMES = ("created_at", "updated_at", "run_at", "started_at", "completed_at", "lease_until", "enqueued_at")


def dumps(value: object) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


#: the codec's name for ``to_micros`` (kept: the stores import it from here)
micros = to_micros


def _micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


def _time(value: object) -> datetime | None:
    return None if value is None else from_micros(cast(int, value))


def job_to_dict(job: Job) -> dict[str, JSONValue]:
    """Every field but the payload; times as microseconds since the epoch."""
    return {
        "id": job.id,
        "type": job.type,
        "owner": job.owner,
        "status": job.status.value,
        "version": job.version,
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "timeout_seconds": job.timeout_seconds,
        "attempts": job.attempts,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result": job.result,
        "error": job.error,
        "idempotency_key": job.idempotency_key,
        "cancel_requested": job.cancel_requested,
        "lease_owner": job.lease_owner,
        "schedule_id": job.schedule_id,
        **{name: _micros(getattr(job, name)) for name in _TIMES},
        **_workflow_fields(job),
    }


def _workflow_fields(job: Job) -> dict[str, JSONValue]:
    """The dependency, flow, expiry and concurrency-key fields, written only by jobs that have them
    (a job without dependencies never gains any, so an update never needs to unset them)."""
    fields: dict[str, JSONValue] = {}
    if job.depends_on:
        fields["depends_on"] = list(job.depends_on)
        fields["waiting_for"] = list(job.waiting_for)
        fields["on_dependency_failure"] = job.on_dependency_failure.value
    if job.flow_id is not None:
        fields["flow_id"] = job.flow_id
    if job.expires_in_seconds is not None:
        fields["expires_in_seconds"] = job.expires_in_seconds
        fields["expires_at"] = _micros(job.expires_at)
    if job.concurrency_key is not None:
        fields["concurrency_key"] = job.concurrency_key
    return fields


def job_from_dict(data: dict[str, Any], payload: JSONObject | None) -> Job:
    return Job(
        id=data["id"],
        type=data["type"],
        owner=data["owner"],
        payload=payload,
        status=JobStatus(data["status"]),
        version=data["version"],
        priority=data["priority"],
        max_attempts=data["max_attempts"],
        timeout_seconds=data["timeout_seconds"],
        attempts=data["attempts"],
        progress=float(data["progress"]),
        progress_message=data["progress_message"],
        result=data["result"],
        error=data["error"],
        idempotency_key=data["idempotency_key"],
        cancel_requested=data["cancel_requested"],
        lease_owner=data["lease_owner"],
        created_at=from_micros(data["created_at"]),
        updated_at=from_micros(data["updated_at"]),
        run_at=_time(data["run_at"]),
        started_at=_time(data["started_at"]),
        completed_at=_time(data["completed_at"]),
        lease_until=_time(data["lease_until"]),
        enqueued_at=_time(data["enqueued_at"]),
        depends_on=tuple(data.get("depends_on", ())),
        waiting_for=tuple(data.get("waiting_for", ())),
        on_dependency_failure=DependencyFailure(data.get("on_dependency_failure", "FAIL")),
        flow_id=data.get("flow_id"),
        expires_in_seconds=data.get("expires_in_seconds"),
        expires_at=_time(data.get("expires_at")),
        schedule_id=data.get("schedule_id"),
        concurrency_key=data.get("concurrency_key"),
    )


def event_to_dict(event: JobEvent, job: dict[str, JSONValue] | None = None) -> dict[str, JSONValue]:
    """The event with its job; ``job``: ``job_to_dict(event.job)`` if the caller has it already."""
    return {
        "job_id": event.job_id,
        "version": event.version,
        "kind": event.kind.value,
        "at": micros(event.at),
        "message": event.message,
        "level": event.level.value if event.level else None,
        "job": job_to_dict(event.job) if job is None else job,
    }


def event_from_dict(data: dict[str, Any]) -> JobEvent:
    return JobEvent(
        job_id=data["job_id"],
        version=data["version"],
        kind=JobEventKind(data["kind"]),
        at=from_micros(data["at"]),
        message=data["message"],
        level=LogLevel(data["level"]) if data["level"] else None,
        job=job_from_dict(data["job"], None),
    )
