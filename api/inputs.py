"""GraphQL input types and their translation to the service's requests and filters."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from api.scalars import JSON
from core.models import DependencyFailure, JobStatus
from core.ports import JobFilter
from core.service import SubmitRequest

__all__ = ["JobFilterInput", "SubmitJobInput"]

strawberry.enum(
    DependencyFailure,
    description="what a job does when a dependency ends FAILED or CANCELLED: FAIL (default) or RUN anyway",
)


@strawberry.input
class SubmitJobInput:
    """One job to create."""

    type: str
    payload: JSON
    priority: int | None = strawberry.field(default=0, description="higher runs first within a job type")
    delay_seconds: int | None = 0
    max_attempts: int | None = strawberry.field(default=None, description="default: the job type's")
    timeout_seconds: int | None = strawberry.field(default=None, description="default: the job type's")
    idempotency_key: str | None = strawberry.field(
        default=None, description="same owner + key within 24 h returns the first job, no new one"
    )
    depends_on: list[strawberry.ID] | None = strawberry.field(
        default=None, description="jobs of the same owner it waits for (WAITING until they are final)"
    )
    on_dependency_failure: DependencyFailure | None = DependencyFailure.FAIL
    expires_in_seconds: int | None = strawberry.field(
        default=None,
        description='not started within this many seconds of becoming due: CANCELLED, error "expired"',
    )
    concurrency_key: str | None = strawberry.field(
        default=None,
        description="jobs of the type with the same key run at most concurrencyPerKey at once",
    )

    def to_request(self) -> SubmitRequest:
        """The service's request (the one translation of a submit input, on every path)."""
        return SubmitRequest(
            type=self.type,
            payload=self.payload,  # type: ignore[arg-type]  # the JSON scalar holds a JSON value
            priority=self.priority or 0,
            delay_seconds=self.delay_seconds or 0,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            idempotency_key=self.idempotency_key,
            depends_on=tuple(str(d) for d in self.depends_on or ()),
            on_dependency_failure=DependencyFailure(self.on_dependency_failure or DependencyFailure.FAIL),
            expires_in_seconds=self.expires_in_seconds,
            concurrency_key=self.concurrency_key,
        )


def _aware(at: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC, the zone every stored time has."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


@strawberry.input(name="JobFilter")
class JobFilterInput:
    """Which jobs to list; every condition given must hold."""

    status: list[JobStatus] | None = None
    type: str | None = None
    owner: str | None = strawberry.field(default=None, description="admin only")
    created_after: datetime | None = None
    created_before: datetime | None = None
    schedule_id: strawberry.ID | None = strawberry.field(
        default=None, description="jobs this schedule submitted"
    )
    flow_id: strawberry.ID | None = strawberry.field(default=None, description="jobs of this flow")

    def to_filter(self) -> JobFilter:
        return JobFilter(
            statuses=frozenset(self.status) if self.status is not None else None,
            type=self.type,
            owner=self.owner,
            created_after=_aware(self.created_after),
            created_before=_aware(self.created_before),
            schedule_id=None if self.schedule_id is None else str(self.schedule_id),
            flow_id=None if self.flow_id is None else str(self.flow_id),
        )
