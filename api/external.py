"""The external-processor mutations: claim a job, then report on it with the job token you got.

A process that is not a jobpulse worker (a Lambda in another language, a GPU box, a partner's
service) takes a job of an external type (``JobType.external``) with ``claimJob`` and reports with
the token: ``heartbeatJob``, ``reportProgress``, ``appendLog``, ``completeJob``, ``failJob``. The
claim is the service's ordinary conditional claim under the owner ``external:<caller>:<nonce>``, so
DESIGN.md §3 holds as for workers: one claim at a time, and a write under a claim that is no longer
the job's changes nothing.

Who may: any authenticated caller, on the jobs it may see — an admin any job, a user its own (the
application that submits the work may also process it). Every call is checked in this order: the
token (``INVALID_TOKEN``: forged, malformed, expired), the job (``NOT_FOUND``), the claim against
the stored job (``CLAIM_LOST``). A cancel request ends the claim at the processor's next call: the
job is written CANCELLED, ``heartbeatJob`` answers ``cancelRequested: true`` and reports answer
``CLAIM_LOST``. The token expires when the attempt's ``timeoutSeconds`` are up.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, cast

import strawberry

from api.context import Info
from api.fields import described_mutation
from api.scalars import JSON
from api.types import JobNode, JobResult, UserError
from core.errors import (
    InvalidStateError,
    JobNotFoundError,
    LeaseLostError,
    UserFacingError,
    ValidationError,
)
from core.flow_control import HeldError
from core.job_tokens import ClaimLostError, JobToken, JobTokenCodec
from core.models import ClaimDecision, Job, JobStatus, JSONValue, LogLevel
from core.service import ClaimResult, JobService
from core.settings import Settings

__all__ = ["ClaimJobResult", "ExternalMutations", "HeartbeatJobResult", "JobClaim", "JobLease"]

MAX_LEASE_SECONDS = 12 * 3600
MAX_MESSAGE_CHARS = 4_000


@functools.lru_cache(maxsize=4)
def _codec(settings: Settings) -> JobTokenCodec:
    # Memoised per settings: the secret may be a file in the data directory, read once.
    return JobTokenCodec.from_settings(settings)


@strawberry.type
class JobClaim:
    """A job claimed by an external processor: report on it with ``token``."""

    token: str = strawberry.field(description="job-scoped; pass it to every report on this attempt")
    job: JobNode = strawberry.field(description="the job as claimed (PROCESSING, this attempt)")
    lease_until: datetime = strawberry.field(description="heartbeatJob before this, or the claim expires")
    expires_at: datetime = strawberry.field(description="the token's end: the attempt's timeout")


ClaimJobResult = Annotated[JobClaim | UserError, strawberry.union("ClaimJobResult")]


@strawberry.type
class JobLease:
    """The claim after a heartbeat."""

    job: JobNode
    lease_until: datetime | None = strawberry.field(description="null once the claim is over")
    cancel_requested: bool = strawberry.field(
        description="true: the job was cancelled; stop, this token is spent"
    )


HeartbeatJobResult = Annotated[JobLease | UserError, strawberry.union("HeartbeatJobResult")]


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[:MAX_MESSAGE_CHARS]}… ({len(text) - MAX_MESSAGE_CHARS} more characters)"


def _lost(job: Job) -> str:
    """Why a genuine token's claim is over, from the job as it is now."""
    if job.is_terminal:
        return f"job {job.id} is {job.status}; this claim is over"
    if job.status is JobStatus.PENDING:
        return f"job {job.id} is PENDING again: this claim expired"
    return f"job {job.id} was claimed again (attempt {job.attempts}): this claim expired"


def _refusal(job_id: str, claimed: ClaimResult) -> UserFacingError:
    """Why ``claimJob`` got no claim, from what the service decided."""
    job = claimed.job
    if job is None:
        return JobNotFoundError(f"job {job_id} not found", field="id")
    if claimed.decision is ClaimDecision.NOT_YET and job.run_at is not None:
        return InvalidStateError(f"job {job_id} is not due until {job.run_at.isoformat()}", field="id")
    if job.status is JobStatus.PROCESSING and job.lease_until is not None:
        until = job.lease_until.isoformat()
        return InvalidStateError(f"job {job_id} is claimed by another processor until {until}", field="id")
    return InvalidStateError(f"job {job_id} is {job.status}; it cannot be claimed", field="id")


async def _held(info: Info, token: str) -> tuple[JobService, JobToken, Job]:
    """The service, the token's claim and the job, once the token, the caller and the claim check out."""
    service, principal = info.context.service, info.context.principal
    held = _codec(service.settings).decode(token, service.clock())
    job = await service.get(principal, held.claim.job_id)
    if job is None:
        raise JobNotFoundError(f"job {held.claim.job_id} not found", field="token")
    try:
        job.check_claim(held.claim)
    except LeaseLostError:
        raise ClaimLostError(_lost(job)) from None
    return service, held, job


async def _cancel_if_requested(service: JobService, held: JobToken, job: Job) -> Job | None:
    """The job written CANCELLED if a cancel was requested (as a worker would stop), else ``None``."""
    if not job.cancel_requested:
        return None
    return await service.finish_cancelled(held.claim, current=job)


async def _report(
    info: Info, token: str, write: Callable[[JobService, JobToken, Job], Awaitable[Job]]
) -> JobResult:
    """Check the token, end the claim on a cancel request, else make the write under the claim."""
    try:
        service, held, job = await _held(info, token)
        cancelled = await _cancel_if_requested(service, held, job)
        if cancelled is not None:
            raise ClaimLostError(f"job {job.id} was cancelled; stop working on it")
        return JobNode.of(await write(service, held, job))
    except LeaseLostError as exc:  # lost between the check and the write
        return UserError.of(ClaimLostError(str(exc)))
    except UserFacingError as exc:
        return UserError.of(exc)


@strawberry.type
class ExternalMutations:
    """Mutations for external processors (merged into ``Mutation``)."""

    @described_mutation(
        "external types only: claim a PENDING job (or one whose claim expired) to run elsewhere"
    )
    async def claim_job(
        self, info: Info, id: strawberry.ID, lease_seconds: int | None = None
    ) -> ClaimJobResult:
        service, principal = info.context.service, info.context.principal
        try:
            job = await service.get(principal, str(id))
            if job is None:
                raise JobNotFoundError(f"job {id} not found", field="id")
            job_type = service.registry.get(job.type)
            if not job_type.external:
                raise ValidationError(
                    f"job {id} is a {job.type} job, which workers run; only external types can be claimed",
                    field="id",
                )
            lease = job_type.lease_for(service.settings) if lease_seconds is None else lease_seconds
            if not 1 <= lease <= MAX_LEASE_SECONDS:
                raise ValidationError(
                    f"leaseSeconds must be between 1 and {MAX_LEASE_SECONDS}, got {lease}",
                    field="leaseSeconds",
                )
            worker_id = f"external:{principal.subject}:{secrets.token_hex(4)}"
            claimed = await service.claim(job.id, worker_id, min(lease, job.timeout_seconds))
            if claimed.claim is None or claimed.job is None:
                raise _refusal(str(id), claimed)
            job = claimed.job
            assert job.started_at is not None and job.lease_until is not None
            expires_at = (job.started_at + timedelta(seconds=job.timeout_seconds)).replace(microsecond=0)
            held = JobToken(claimed.claim, min(lease, job.timeout_seconds), expires_at)
            return JobClaim(
                token=_codec(service.settings).encode(held),
                job=JobNode.of(job),
                lease_until=job.lease_until,
                expires_at=expires_at,
            )
        except HeldError as exc:  # its type is paused or at a limit: nothing was claimed
            return UserError.of(InvalidStateError(f"job {id} cannot start now: {exc}", field="id"))
        except UserFacingError as exc:
            return UserError.of(exc)

    @described_mutation("extend the claim's lease; says whether the job was cancelled (then stop)")
    async def heartbeat_job(self, info: Info, token: str) -> HeartbeatJobResult:
        try:
            service, held, job = await _held(info, token)
            cancelled = await _cancel_if_requested(service, held, job)
            if cancelled is not None:
                return JobLease(job=JobNode.of(cancelled), lease_until=None, cancel_requested=True)
            # Never past the token's end: after the timeout nobody can report, so the lease ends too.
            lease = min(held.lease_seconds, (held.expires_at - service.clock()).total_seconds())
            job = await service.heartbeat(held.claim, lease, current=job)
            return JobLease(job=JobNode.of(job), lease_until=job.lease_until, cancel_requested=False)
        except LeaseLostError as exc:
            return UserError.of(ClaimLostError(str(exc)))
        except UserFacingError as exc:
            return UserError.of(exc)

    @described_mutation("progress of a claimed job, 0 to 100; it never goes backwards within an attempt")
    async def report_progress(
        self, info: Info, token: str, percent: float, message: str | None = None
    ) -> JobResult:
        if not 0 <= percent <= 100:
            error = ValidationError(f"percent must be between 0 and 100, got {percent}", field="percent")
            return UserError.of(error)
        text = _cut(message) if message is not None else None
        return await _report(
            info, token, lambda service, held, job: service.progress(held.claim, percent, text, current=job)
        )

    @described_mutation("append a log line to a claimed job (lines over 4000 characters are cut)")
    async def append_log(
        self, info: Info, token: str, message: str, level: LogLevel = LogLevel.INFO
    ) -> JobResult:
        text = _cut(message)
        return await _report(
            info, token, lambda service, held, job: service.log(held.claim, level, text, current=job)
        )

    @described_mutation("finish a claimed job: COMPLETED with this result")
    async def complete_job(self, info: Info, token: str, result: JSON | None = None) -> JobResult:
        value = cast(JSONValue, result)  # the JSON scalar holds a JSON value
        return await _report(
            info, token, lambda service, held, job: service.complete(held.claim, value, current=job)
        )

    @described_mutation(
        "end a claimed attempt in failure: retried after a backoff (if retryable, attempts left), else FAILED"
    )
    async def fail_job(self, info: Info, token: str, error: str, retryable: bool = True) -> JobResult:
        text = _cut(error)
        return await _report(
            info,
            token,
            lambda service, held, job: service.fail_attempt(
                held.claim, text, retryable=retryable, current=job
            ),
        )
