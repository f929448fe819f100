"""GraphQL object types over the domain: ``Job``, ``JobLog``, ``JobEvent``, ``JobType``, ``UserError``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import structlog

from api.context import Info
from api.fields import described_field, live_field
from api.job_attempts import JobAttemptNode, job_attempts, job_estimated_completion
from api.scalars import JSON
from core.blobs import BlobRef
from core.cursors import EventCursor
from core.errors import BackendError, RateLimitedError, UserFacingError, ValidationError
from core.flow_control import TypeLimits
from core.jobtypes import JobType
from core.models import Job, JobEvent, JobEventKind, JobStatus, JSONValue, LogLevel

__all__ = [
    "MAX_LOG_LINES",
    "ErrorCode",
    "JobEventKind",
    "JobEventNode",
    "JobLogNode",
    "JobNode",
    "JobResult",
    "JobStatus",
    "JobTypeNode",
    "LogLevel",
    "RateLimit",
    "UserError",
]

if TYPE_CHECKING:
    from api.flows import FlowNode

MAX_LOG_LINES = 1000

log = structlog.get_logger("jobpulse.api")

# The domain enums are the GraphQL enums: same names, same values.
strawberry.enum(JobStatus)
strawberry.enum(JobEventKind)
strawberry.enum(LogLevel)


@strawberry.enum
class ErrorCode(enum.Enum):
    """Why a mutation refused its input (``core.errors.UserFacingError.code``)."""

    VALIDATION = "VALIDATION"
    UNKNOWN_JOB_TYPE = "UNKNOWN_JOB_TYPE"
    NOT_FOUND = "NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_TOKEN = "INVALID_TOKEN"  # a job token (claimJob) that is forged, malformed or expired
    CLAIM_LOST = "CLAIM_LOST"  # a genuine job token whose claim is over


@strawberry.type(name="JobLog")
class JobLogNode:
    """One log line a handler wrote."""

    at: datetime
    level: LogLevel
    message: str

    @classmethod
    def of(cls, event: JobEvent) -> JobLogNode:
        return cls(at=event.at, level=event.level or LogLevel.INFO, message=event.message or "")


def _result_now(node: JobNode) -> JSON | None:
    """``result`` as its resolver gives it, when no blob is involved (see ``api.fields.LIVE_VALUE``)."""
    result = node.source.result
    if BlobRef.of(result) is not None:
        raise LookupError("the result is a blob reference: its resolver reads or hides it")
    return None if result is None else JSON(result)


@strawberry.type(name="Job")
class JobNode:
    """A job as the caller may see it (payload read lazily: event snapshots do not carry it)."""

    id: strawberry.ID
    type: str
    status: JobStatus
    error: str | None = strawberry.field(description="last failure message, if any")
    progress: float = strawberry.field(description="0 to 100")
    progress_message: str | None
    attempts: int = strawberry.field(description="attempts started so far")
    max_attempts: int
    priority: int
    owner: str
    idempotency_key: str | None
    version: int = strawberry.field(description="+1 on every change; events and updates carry it")
    created_at: datetime
    updated_at: datetime
    run_at: datetime | None = strawberry.field(description="earliest next start (delay or retry backoff)")
    started_at: datetime | None
    completed_at: datetime | None
    source: strawberry.Private[Job]

    @classmethod
    def of(cls, job: Job) -> JobNode:
        return cls(
            id=strawberry.ID(job.id),
            type=job.type,
            status=job.status,
            error=job.error,
            progress=job.progress,
            progress_message=job.progress_message,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            priority=job.priority,
            owner=job.owner,
            idempotency_key=job.idempotency_key,
            version=job.version,
            created_at=job.created_at,
            updated_at=job.updated_at,
            run_at=job.run_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            source=job,
        )

    @described_field("jobs of its type with the same key run at most concurrencyPerKey at once")
    def concurrency_key(self) -> str | None:
        return self.source.concurrency_key

    @described_field(
        "why a PENDING or WAITING job does not run yet: dependency, runAt, paused, concurrency, key, rate "
        "(null: nothing holds it back, or it is not waiting)"
    )
    async def wait_reason(self, info: Info) -> str | None:
        controls = info.context.service.controls
        if controls is None or self.source.status not in (JobStatus.PENDING, JobStatus.WAITING):
            return None
        return await controls.wait_reason(self.source, info.context.service.clock())

    @described_field("the schedule that submitted it, if one did")
    def schedule_id(self) -> strawberry.ID | None:
        schedule_id = self.source.schedule_id
        return None if schedule_id is None else strawberry.ID(schedule_id)

    async def _stored_payload(self, info: Info) -> JSONValue:
        """The payload as stored: the value, or a reference to its blob (see core/blobs.py)."""
        if self.source.payload is not None:
            return self.source.payload
        return await info.context.payloads.load(self.source.id)

    @described_field(
        "the payload; over JOBPULSE_S3_INLINE_MAX_BYTES in S3, its reference "
        "{$jobpulse_blob, bytes, sha256} instead (fetch payloadUrl); so too if it cannot be read now"
    )
    async def payload(self, info: Info) -> JSON:
        blobs = info.context.service.blobs
        stored = await self._stored_payload(info)
        if blobs.too_large_to_inline(stored):
            return JSON(stored)
        try:
            return JSON(await blobs.resolve(stored))
        except BackendError as exc:
            # Non-null: an error here would null the parent, and a whole listing with it.
            log.warning("payload blob not readable", job_id=self.source.id, error=str(exc))
            return JSON(stored)

    @live_field("the result; null over JOBPULSE_S3_INLINE_MAX_BYTES in S3 (fetch resultUrl)", _result_now)
    async def result(self, info: Info) -> JSON | None:
        blobs = info.context.service.blobs
        if self.source.result is None or blobs.too_large_to_inline(self.source.result):
            return None
        return JSON(await blobs.resolve(self.source.result))

    @described_field("a presigned URL of the result when it is kept in S3 (null when inline)")
    async def result_url(self, info: Info) -> str | None:
        return await info.context.service.blobs.url(self.source.result)

    @described_field("a presigned URL of the payload when it is kept in S3 (null when inline)")
    async def payload_url(self, info: Info) -> str | None:
        return await info.context.service.blobs.url(await self._stored_payload(info))

    @described_field("the jobs it waits for (or waited for)")
    async def depends_on(self, info: Info) -> list[JobNode]:
        from api.flows import dependencies_of

        return await dependencies_of(info, self.source)

    @described_field("the jobs that wait for it")
    async def dependents(self, info: Info) -> list[JobNode]:
        from api.flows import dependents_of

        return await dependents_of(info, self.source)

    @described_field("the flow it belongs to, if any")
    async def flow(self, info: Info) -> Annotated[FlowNode, strawberry.lazy("api.flows")] | None:
        from api.flows import flow_of

        return await flow_of(info, self.source)

    @described_field("{id: result} of its direct COMPLETED dependencies; handlers get the same")
    async def dependency_results(self, info: Info) -> JSON | None:
        from api.flows import dependency_results_of

        return await dependency_results_of(info, self.source)

    @described_field("the newest log lines, oldest first")
    async def logs(self, info: Info, last: int | None = 100) -> list[JobLogNode]:
        last = 100 if last is None else last
        if not 0 <= last <= MAX_LOG_LINES:
            raise ValidationError(f"last must be between 0 and {MAX_LOG_LINES}, got {last}", field="last")
        if last == 0:
            return []
        events = await info.context.service.store.list_logs(self.source.id, last)
        return [JobLogNode.of(event) for event in events]

    @described_field("one entry per attempt, oldest first (from the job's stored events)")
    async def attempt_history(self, info: Info) -> list[JobAttemptNode]:
        return await job_attempts(info, self.source)

    @described_field(
        "while PROCESSING: from this attempt's progress rate, or the type's median run time before any "
        "progress; null otherwise"
    )
    async def estimated_completion(self, info: Info) -> datetime | None:
        return await job_estimated_completion(info, self.source)


@strawberry.type
class UserError:
    """A refusal the caller can fix."""

    code: ErrorCode
    message: str
    field: str | None
    retry_after_seconds: float | None = strawberry.field(
        default=None, description="set with RATE_LIMITED: seconds until a retry can succeed"
    )

    @classmethod
    def of(cls, exc: UserFacingError) -> UserError:
        retry_after = exc.retry_after_seconds if isinstance(exc, RateLimitedError) else None
        return cls(
            code=ErrorCode[exc.code], message=exc.message, field=exc.field, retry_after_seconds=retry_after
        )


JobResult = Annotated[JobNode | UserError, strawberry.union("JobResult")]


@strawberry.type(name="JobEvent")
class JobEventNode:
    """One stored change of a job."""

    cursor: str = strawberry.field(description="resume point: pass as `after`")
    kind: JobEventKind
    at: datetime
    message: str | None
    level: LogLevel | None = strawberry.field(description="the level of a LOG event's line")
    job: JobNode = strawberry.field(description="the job as of this event (job.version)")

    @classmethod
    def of(cls, event: JobEvent) -> JobEventNode:
        return cls(
            cursor=EventCursor.of(event).encode(),
            kind=event.kind,
            at=event.at,
            message=event.message,
            level=event.level,
            job=JobNode.of(event.job),
        )


@strawberry.type
class RateLimit:
    """At most ``limit`` starts per ``periodSeconds`` across all workers."""

    limit: int
    period_seconds: float


@strawberry.type(name="JobType")
class JobTypeNode:
    """A kind of job this server accepts."""

    name: str
    description: str
    payload_schema: JSON = strawberry.field(description="JSON Schema of the payload")
    max_attempts: int
    timeout_seconds: int
    #: its limits when the node was made from them (a flow control mutation); else read when asked
    limits: strawberry.Private[TypeLimits | None] = None

    @classmethod
    def of(cls, job_type: JobType[Any], limits: TypeLimits | None = None) -> JobTypeNode:
        return cls(
            name=job_type.name,
            description=job_type.description,
            payload_schema=JSON(job_type.payload_schema()),
            max_attempts=job_type.max_attempts,
            timeout_seconds=job_type.timeout_seconds,
            limits=limits,
        )

    async def _limits(self, info: Info) -> TypeLimits:
        if self.limits is None:
            controls = info.context.service.controls
            self.limits = TypeLimits() if controls is None else await controls.limits(self.name)
        return self.limits

    @described_field("no new starts of this type anywhere; submits are still accepted")
    async def paused(self, info: Info) -> bool:
        return (await self._limits(info)).paused

    @described_field("most jobs of this type running at once across all workers (null: no limit)")
    async def concurrency(self, info: Info) -> int | None:
        return (await self._limits(info)).concurrency

    @described_field("most running at once per concurrencyKey")
    async def concurrency_per_key(self, info: Info) -> int:
        return (await self._limits(info)).concurrency_per_key

    @described_field("most starts per period across all workers (null: no limit)")
    async def rate_limit(self, info: Info) -> RateLimit | None:
        rate = (await self._limits(info)).rate_limit
        return None if rate is None else RateLimit(limit=rate.limit, period_seconds=rate.period_seconds)
