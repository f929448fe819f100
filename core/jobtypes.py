"""Job types: a name, a pydantic payload model, defaults, and the handler that runs it.

A handler is ``async def handler(ctx: JobContext, payload: MyPayload) -> JSON``. It reports with
``await ctx.progress(40, "resizing")`` and ``await ctx.log("…")``, and steers retries by raising
``Retry(delay=…)`` (try again, after this long) or ``PermanentError`` (fail now, no retry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import pydantic

from core.errors import UnknownJobTypeError, ValidationError
from core.models import Job, JSONObject, JSONValue, LogLevel

if TYPE_CHECKING:
    from core.blobs import BlobStore
    from core.settings import Settings

__all__ = ["JobContext", "JobType", "JobTypeRegistry", "PermanentError", "Retry"]

P = TypeVar("P", bound=pydantic.BaseModel)


class Retry(Exception):
    """Raised by a handler: this attempt failed, try again (after ``delay`` seconds if given)."""

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(Exception):
    """Raised by a handler: the job cannot succeed, fail it now without further attempts."""


class JobContext(Protocol):
    """What a running handler gets besides its payload."""

    @property
    def job(self) -> Job: ...

    @property
    def attempt(self) -> int: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def blobs(self) -> BlobStore | None:
        """Where large values and files go (S3, or files beside SQLite); ``None`` if not configured."""

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0–100); it never goes backwards within an attempt."""

    async def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        """Append a log line to the job, visible live to subscribers."""

    async def dependency_results(self) -> dict[str, JSONValue]:
        """``{job id: result}`` of this job's direct COMPLETED dependencies (``dependsOn``, a flow's
        ``after``); empty for a job without dependencies. Large results come back whole."""


Handler = Callable[[JobContext, P], Awaitable[JSONValue]]


@dataclass(frozen=True)
class JobType(Generic[P]):
    """Everything jobpulse knows about one kind of job."""

    name: str
    description: str
    payload_model: type[P]
    handler: Handler[P]
    max_attempts: int = 3
    timeout_seconds: int = 300
    #: run by something other than a jobpulse worker; workers leave its queue alone.
    external: bool = False
    #: this type's lease (heartbeat every third of it); unset: ``JOBPULSE_VISIBILITY_TIMEOUT``.
    #: ``JOBPULSE_TYPE_LEASE_SECONDS`` overrides it.
    lease_seconds: float | None = None
    #: flow control defaults (DESIGN.md §8; ``setJobTypeLimits`` overrides them at run time): most jobs
    #: running at once across all workers (``None``: no limit), most per ``concurrencyKey``, and most
    #: starts per period as ``(limit, period_seconds)`` (``None``: no limit)
    concurrency: int | None = None
    concurrency_per_key: int = 1
    rate_limit: tuple[int, float] | None = None

    def lease_for(self, settings: Settings) -> float:
        """How long a claim of this type holds without a heartbeat."""
        configured = settings.type_lease_overrides.get(self.name)
        if configured is not None:
            return configured
        return settings.visibility_timeout if self.lease_seconds is None else self.lease_seconds

    def payload_schema(self) -> JSONObject:
        """The JSON Schema of the payload, as ``jobTypes.payloadSchema`` returns it."""
        schema: JSONObject = self.payload_model.model_json_schema()
        return schema

    def parse(self, payload: JSONValue) -> P:
        """Validate ``payload``; raise ``ValidationError`` naming the first offending field."""
        try:
            return self.payload_model.model_validate(payload)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            where = f"payload.{path}" if path else "payload"
            raise ValidationError(f"{where}: {first['msg']}", field=where) from exc


class JobTypeRegistry:
    """The job types a process knows, by name."""

    def __init__(self, job_types: list[JobType[Any]] | None = None) -> None:
        self._types: dict[str, JobType[Any]] = {}
        for job_type in job_types or []:
            self.register(job_type)

    def register(self, job_type: JobType[Any]) -> None:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} is registered twice")
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType[Any]:
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise UnknownJobTypeError(f"unknown job type {name!r} (known: {known})", field="type") from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[JobType[Any]]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    @property
    def names(self) -> list[str]:
        return sorted(self._types)
