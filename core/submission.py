"""What a client may ask for: ``SubmitRequest``, its limits, and the new job it makes."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from core.blobs import LargeValues
from core.errors import PayloadTooLargeError, ValidationError
from core.jobcopy import copy_job
from core.jobtypes import JobTypeRegistry
from core.models import DependencyFailure, Job, JobEvent, JobEventKind, JobId, JSONValue, new_job_id
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
    "next_job_id",
]

MAX_PRIORITY = 1_000
MAX_DELAY_SECONDS = 366 * 86_400
MAX_ATTEMPTS = 100
MAX_TIMEOUT_SECONDS = 7 * 86_400
MAX_IDEMPOTENCY_KEY = 255

#: a random hex digit's low two bits under the RFC 4122 variant (binary 10xx)
_VARIANT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


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
    #: ids of existing jobs of the same owner it waits for (``core.dependencies``)
    depends_on: tuple[JobId, ...] = ()
    on_dependency_failure: DependencyFailure = DependencyFailure.FAIL
    expires_in_seconds: int | None = None
    #: set by the scheduler on the jobs a schedule submits
    schedule_id: str | None = None
    #: jobs of the type with the same key run at most ``concurrencyPerKey`` at once
    concurrency_key: str | None = None


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
    """``count`` ids for a batch (``next_job_id`` each: its buffer reads the system's randomness
    once per ``_IDS_PER_READ`` ids)."""
    return [next_job_id() for _ in range(count)]


#: random hex digits for ``next_job_id``: 20 per id, read from the system ``_IDS_PER_READ`` ids at a time
_IDS_PER_READ = 256
_noise = ""
_noise_at = 0
_noise_lock = threading.Lock()


def next_job_id() -> JobId:
    """An id laid out as ``new_job_id`` lays it out (48 bits of milliseconds, version 7, the RFC 4122
    variant, 74 random bits), formatted from hex digits, its randomness taken from a buffer read
    once per ``_IDS_PER_READ`` ids rather than once per id as in ``new_job_id`` (a system call each).

    The milliseconds are read per id, so ids stay time-ordered; the buffer is dropped in a forked
    child, which must not hand out its parent's remaining ids.
    """
    global _noise, _noise_at
    with _noise_lock:  # loops in several threads must not take the same digits
        i, noise = _noise_at, _noise
        if i >= len(noise):
            _noise = noise = os.urandom(10 * _IDS_PER_READ).hex()
            i = 0
        _noise_at = i + 20
    ms = (time.time_ns() // 1_000_000) & 0xFFFFFFFFFFFF
    head = f"{ms:012x}"
    return (
        f"{head[:8]}-{head[8:]}-7{noise[i + 1 : i + 4]}-{_VARIANT[noise[i + 4]]}{noise[i + 5 : i + 8]}"
        f"-{noise[i + 8 : i + 20]}"
    )


def _forget_noise() -> None:
    global _noise, _noise_at, _noise_lock
    _noise, _noise_at, _noise_lock = "", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_noise)


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
    concurrency_key = request.concurrency_key
    if concurrency_key is not None and not 1 <= len(concurrency_key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"concurrencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field="concurrencyKey"
        )
    expires = request.expires_in_seconds
    if expires is not None:
        check_range("expiresInSeconds", expires, 1, MAX_DELAY_SECONDS)
    run_at = now + timedelta(seconds=request.delay_seconds) if request.delay_seconds else None
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
        run_at=run_at,
        on_dependency_failure=request.on_dependency_failure,
        expires_in_seconds=expires,
        expires_at=None if expires is None else (run_at or now) + timedelta(seconds=expires),
        schedule_id=request.schedule_id,
        concurrency_key=concurrency_key,
    )
