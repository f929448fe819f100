"""A ``Job`` as the REST routes answer it: ``Job``'s GraphQL fields at the top level, as JSON values."""

from __future__ import annotations

import structlog

from core.errors import BackendError
from core.models import Job, JSONValue
from core.service import JobService

__all__ = ["job_json"]

log = structlog.get_logger("jobpulse.api")


async def _payload(service: JobService, job: Job) -> JSONValue:
    """As ``Job.payload`` in GraphQL: the value, or its blob reference when too large or unreadable."""
    stored = job.payload if job.payload is not None else {}
    if service.blobs.too_large_to_inline(stored):
        return stored
    try:
        return await service.blobs.resolve(stored)
    except BackendError as exc:
        log.warning("payload blob not readable", job_id=job.id, error=str(exc))
        return stored


async def _result(service: JobService, job: Job) -> JSONValue:
    if job.result is None or service.blobs.too_large_to_inline(job.result):
        return None
    return await service.blobs.resolve(job.result)


async def job_json(service: JobService, job: Job) -> dict[str, object]:
    """The body of ``JobBody`` for ``job`` (built as a dict: this is the submit route's hot path)."""
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status.value,
        "payload": await _payload(service, job),
        "result": await _result(service, job),
        "error": job.error,
        "progress": job.progress,
        "progressMessage": job.progress_message,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "priority": job.priority,
        "owner": job.owner,
        "idempotencyKey": job.idempotency_key,
        "version": job.version,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "runAt": job.run_at,
        "startedAt": job.started_at,
        "completedAt": job.completed_at,
        "payloadUrl": await service.blobs.url(job.payload),
        "resultUrl": await service.blobs.url(job.result),
        "dependsOn": list(job.depends_on),
        "flowId": job.flow_id,
        "scheduleId": job.schedule_id,
        "concurrencyKey": job.concurrency_key,
    }
