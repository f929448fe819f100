"""Opaque, resumable cursors: for events (``jobEvents(after:)``) and for job pages (Relay)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.errors import ValidationError
from core.models import JobEvent, JobId

__all__ = ["EventCursor", "JobCursor", "from_micros", "to_micros"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(at: datetime) -> int:
    """Microseconds since the epoch: the exact, sortable form every backend stores times in.

    Subtracting two aware datetimes accounts for their offsets, and dividing the difference by one
    microsecond is exact integer arithmetic (a third of the time of going through ``astimezone``:
    every time of every job and event is encoded with it). A naive time is read as local time.
    """
    if at.tzinfo is None:
        at = at.astimezone(UTC)
    return (at - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC time ``to_micros`` encoded (exact: timedelta arithmetic is integer)."""
    return _EPOCH + timedelta(microseconds=micros)


def _encode(prefix: str, *parts: object) -> str:
    raw = ":".join([prefix, *(str(p) for p in parts)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(prefix: str, text: str, count: int, field: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field} is not a cursor this server issued", field=field) from exc
    parts = raw.split(":")
    if len(parts) != count + 1 or parts[0] != prefix:
        raise ValidationError(f"{field} is not a cursor this server issued", field=field)
    return parts[1:]


@dataclass(frozen=True, order=True, slots=True)
class EventCursor:
    """Orders events across jobs by (time, job id, version); within a job, version decides."""

    at_micros: int
    job_id: JobId
    version: int

    @classmethod
    def of(cls, event: JobEvent) -> EventCursor:
        return cls(to_micros(event.at), event.job_id, event.version)

    def encode(self) -> str:
        return _encode("e1", self.at_micros, self.job_id, self.version)

    @classmethod
    def decode(cls, text: str, field: str = "after") -> EventCursor:
        at, job_id, version = _decode("e1", text, 3, field)
        try:
            return cls(int(at), job_id, int(version))
        except ValueError as exc:
            raise ValidationError(f"{field} is not a cursor this server issued", field=field) from exc


@dataclass(frozen=True, order=True, slots=True)
class JobCursor:
    """A position in the newest-first job listing: (createdAt, id)."""

    created_micros: int
    job_id: JobId

    def encode(self) -> str:
        return _encode("j1", self.created_micros, self.job_id)

    @classmethod
    def decode(cls, text: str, field: str = "after") -> JobCursor:
        created, job_id = _decode("j1", text, 2, field)
        try:
            return cls(int(created), job_id)
        except ValueError as exc:
            raise ValidationError(f"{field} is not a cursor this server issued", field=field) from exc
