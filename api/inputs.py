"""GraphQL input types and their translation to the service's requests and filters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from api.scalars import JSON
from core.models import JobStatus
from core.ports import JobFilter
from core.service import SubmitRequest

__all__ = ["JobFilterInput", "SubmitJobInput", "submit_request"]


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

    def to_request(self) -> SubmitRequest:
        return SubmitRequest(
            type=self.type,
            payload=self.payload,  # type: ignore[arg-type]  # the JSON scalar holds a JSON value
            priority=self.priority or 0,
            delay_seconds=self.delay_seconds or 0,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            idempotency_key=self.idempotency_key,
        )


def submit_request(value: Mapping[str, Any]) -> SubmitRequest:
    """graphql-core's coerced ``SubmitJobInput`` value (camelCase keys) as the service's request.

    What ``SubmitJobInput(...).to_request()`` gives for the same value, without building the
    strawberry object first (the submit mutations' resolvers read their raw arguments). graphql-core
    has already checked every field's type and filled the schema's defaults; the service checks
    the rest (ranges, payload size, the job type) and refuses with the same ``UserError`` either way.
    """
    return SubmitRequest(
        type=value["type"],
        payload=value["payload"],
        priority=value.get("priority") or 0,
        delay_seconds=value.get("delaySeconds") or 0,
        max_attempts=value.get("maxAttempts"),
        timeout_seconds=value.get("timeoutSeconds"),
        idempotency_key=value.get("idempotencyKey"),
    )


def _fields(input_type: type) -> tuple[tuple[str, str], ...]:
    """(GraphQL name, Python name) of each field of ``input_type`` (names in camelCase, as in the schema)."""
    definition = get_object_definition(input_type, strict=True)
    return tuple((f.graphql_name or to_camel_case(f.python_name), f.python_name) for f in definition.fields)


_SUBMIT_FIELDS = _fields(SubmitJobInput)


def _submit_job_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """Build a ``SubmitJobInput`` straight from graphql-core's coerced value.

    Every field is a leaf (strings, ints, the ``JSON`` scalar, whose ``parse_value`` already
    checked the payload): nothing needs converting, so strawberry's generic per-field walk
    (annotations resolved, names converted, each value dispatched on its type) is skipped. Fields
    left out keep their defaults.
    """
    return cls(**{python: value[name] for name, python in _SUBMIT_FIELDS if name in value})


get_object_definition(SubmitJobInput, strict=True).from_input = _submit_job_input


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

    def to_filter(self) -> JobFilter:
        return JobFilter(
            statuses=frozenset(self.status) if self.status is not None else None,
            type=self.type,
            owner=self.owner,
            created_after=_aware(self.created_after),
            created_before=_aware(self.created_before),
            schedule_id=None if self.schedule_id is None else str(self.schedule_id),
        )
