"""The REST bodies as pydantic models: they validate requests and are the OpenAPI document's schemas.

Field names are the GraphQL names (camelCase): a submit's body has ``SubmitJobInput``'s fields, a
job is answered with ``Job``'s fields at the top level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from core.models import DependencyFailure, JobStatus
from core.submission import SubmitRequest

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "JobBody",
    "JobPageBody",
    "StatsBody",
    "StatusCountsBody",
    "SubmitJobBody",
    "TypeStatsBody",
]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SubmitJobBody(_Camel):
    """One job to create (``SubmitJobInput``); unknown fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid", strict=True)

    type: str = Field(description="a job type this server accepts (GET /graphql { jobTypes })")
    payload: JsonValue = Field(description="the handler's input; checked against the type's schema")
    priority: int = Field(default=0, description="higher runs first within a job type")
    delay_seconds: int = Field(default=0, description="earliest start, this many seconds from now")
    max_attempts: int | None = Field(default=None, description="default: the job type's")
    timeout_seconds: int | None = Field(default=None, description="default: the job type's")
    idempotency_key: str | None = Field(
        default=None,
        description="same owner + key within 24 h returns the first job, no new one "
        "(the Idempotency-Key header, when sent, wins)",
    )
    depends_on: list[str] | None = Field(
        default=None, description="ids of jobs of the same owner it waits for (WAITING until they are final)"
    )
    on_dependency_failure: Literal["FAIL", "RUN"] = Field(
        default="FAIL", description="when a dependency ends FAILED or CANCELLED: fail too, or run anyway"
    )
    expires_in_seconds: int | None = Field(
        default=None,
        description='not started within this many seconds of becoming due: CANCELLED, error "expired"',
    )
    concurrency_key: str | None = Field(
        default=None, description="jobs of the type with the same key run at most concurrencyPerKey at once"
    )

    def to_request(self, idempotency_key: str | None) -> SubmitRequest:
        return SubmitRequest(
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            delay_seconds=self.delay_seconds,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            idempotency_key=idempotency_key if idempotency_key is not None else self.idempotency_key,
            depends_on=tuple(self.depends_on or ()),
            on_dependency_failure=DependencyFailure(self.on_dependency_failure),
            expires_in_seconds=self.expires_in_seconds,
            concurrency_key=self.concurrency_key,
        )


class JobBody(_Camel):
    """A job as the caller may see it (``Job``'s fields)."""

    id: str
    type: str
    status: JobStatus
    payload: JsonValue = Field(
        description="over JOBPULSE_S3_INLINE_MAX_BYTES, its blob reference instead (fetch payloadUrl)"
    )
    result: JsonValue = Field(description="null until COMPLETED, or when kept in S3 (fetch resultUrl)")
    error: str | None = Field(description="last failure message, if any")
    progress: float = Field(description="0 to 100")
    progress_message: str | None
    attempts: int = Field(description="attempts started so far")
    max_attempts: int
    priority: int
    owner: str
    idempotency_key: str | None
    version: int = Field(description="+1 on every change")
    created_at: datetime
    updated_at: datetime
    run_at: datetime | None = Field(description="earliest next start (delay or retry backoff)")
    started_at: datetime | None
    completed_at: datetime | None
    payload_url: str | None = Field(description="a presigned URL of the payload when it is kept in S3")
    result_url: str | None = Field(description="a presigned URL of the result when it is kept in S3")
    depends_on: list[str] = Field(description="ids of the jobs it waits for")
    flow_id: str | None = Field(description="the flow it belongs to (submitFlow), if any")
    schedule_id: str | None = Field(description="the schedule that submitted it, if any")
    concurrency_key: str | None


class JobPageBody(_Camel):
    """One page of jobs, newest first; pass ``nextCursor`` as ``cursor`` for the next page."""

    jobs: list[JobBody]
    next_cursor: str | None = Field(description="null on the last page")
    has_next_page: bool


class CountBody(_Camel):
    """How many jobs a bulk action changed."""

    count: int


class StatusCountsBody(_Camel):
    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int


class TypeStatsBody(_Camel):
    type: str
    queue_depth: int
    dead_letter_depth: int
    by_status: StatusCountsBody


class StatsBody(_Camel):
    """``JobStats``: counts by status and type, run times, failure rate, queue depths."""

    total_jobs: int
    by_status: StatusCountsBody
    average_processing_time: float | None = Field(description="seconds, over completed jobs")
    failure_rate: float = Field(description="percent of finished jobs that FAILED")
    queue_depth: int
    dead_letter_depth: int
    by_type: list[TypeStatsBody]


class ErrorDetail(_Camel):
    code: str = Field(
        description="the GraphQL UserError code, or UNAUTHENTICATED, FORBIDDEN, BAD_REQUEST, ..."
    )
    message: str
    field: str | None = Field(description="the request field at fault (camelCase), if one is")


class ErrorBody(_Camel):
    """Every 4xx and 5xx answer of the REST routes."""

    error: ErrorDetail
