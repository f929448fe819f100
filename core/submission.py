"""What a client may ask for: ``SubmitRequest``, its limits, and the new job it makes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from core.blobs import LargeValues
from core.errors import PayloadTooLargeError, ValidationError
from core.jobcopy import copy_job
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobEvent, JobEventKind, JobId, JSONValue, new_job_id
from core.settings import Settings

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY_SECONDS",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_PRIORITY",
    "MAX_TIMEOUT_SECONDS",
    "SubmitRequest",
    "check_range",
    "created_event",
    "new_job",
    "new_job_ids",
]

MAX_PRIORITY = 1_000
MAX_DELAY_SECONDS = 366 * 86_400
MAX_ATTEMPTS = 100
MAX_TIMEOUT_SECONDS = 7 * 86_400
MAX_IDEMPOTENCY_KEY = 255

#: the 74 random bits of an id: all but the 48 of the timestamp, 4 of the version, 2 of the variant
_RANDOM_BITS = (1 << 80) - 1 & ~(0xF << 76) & ~(0x3 << 62)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One job to create, as a client asked for it."""

    type: str
    payload: JSONValue
    priority: int = 0
    delay_seconds: float = 0
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    idempotency_key: str | None = None


def check_range(field: str, value: float, low: float, high: float) -> None:
    """Raise a ``ValidationError`` naming ``field`` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ValidationError(f"{field} must be between {low} and {high}, got {value}", field=field)


def created_event(job: Job, message: str) -> JobEvent:
    """``JobEvent.of(job, JobEventKind.CREATED, message)``, its payload-less copy made by ``copy_job``."""
    return JobEvent(
        job_id=job.id,
        version=job.version,
        kind=JobEventKind.CREATED,
        at=job.updated_at,
        job=copy_job(job, payload=None),
        message=message,
    )


def new_job_ids(count: int) -> list[JobId]:
    """``count`` ids as ``new_job_id`` makes them, from one read of the system's randomness."""
    ms = (time.time_ns() // 1_000_000) & 0xFFFFFFFFFFFF
    # The timestamp, version 7 and the RFC 4122 variant, as in ``new_job_id``.
    fixed = ms << 80 | 0x7 << 76 | 0x2 << 62
    noise = os.urandom(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        value = fixed | int.from_bytes(noise[start : start + 10], "big") & _RANDOM_BITS
        h = f"{value:032x}"
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def new_job(
    registry: JobTypeRegistry,
    settings: Settings,
    owner: str,
    request: SubmitRequest,
    now: datetime,
    job_id: JobId | None = None,
) -> Job:
    """The PENDING job ``request`` makes, or the first reason it is refused (a ``UserFacingError``).

    ``job_id`` is one of ``new_job_ids`` for a batch; by default a fresh ``new_job_id``.
    """
    job_type = registry.get(request.type)
    size = len(orjson.dumps(request.payload))
    if size > settings.max_payload_bytes:
        raise PayloadTooLargeError(
            f"payload is {size} bytes; the limit is {settings.max_payload_bytes}", field="payload"
        )
    if not isinstance(request.payload, dict):
        raise ValidationError("payload must be a JSON object", field="payload")
    LargeValues.check_payload(request.payload)
    job_type.parse(request.payload)
    check_range("priority", request.priority, -MAX_PRIORITY, MAX_PRIORITY)
    check_range("delaySeconds", request.delay_seconds, 0, MAX_DELAY_SECONDS)
    max_attempts = request.max_attempts if request.max_attempts is not None else job_type.max_attempts
    check_range("maxAttempts", max_attempts, 1, MAX_ATTEMPTS)
    timeout = request.timeout_seconds if request.timeout_seconds is not None else job_type.timeout_seconds
    check_range("timeoutSeconds", timeout, 1, MAX_TIMEOUT_SECONDS)
    key = request.idempotency_key
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field="idempotencyKey"
        )
    return Job(
        id=job_id if job_id is not None else new_job_id(),
        type=job_type.name,
        owner=owner,
        payload=request.payload,
        priority=request.priority,
        max_attempts=max_attempts,
        timeout_seconds=timeout,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
        run_at=now + timedelta(seconds=request.delay_seconds) if request.delay_seconds else None,
    )
