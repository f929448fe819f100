"""EventDeduplicator: which events a feed has not emitted yet, and where a resync re-reads from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.streams import RESYNC_WINDOW_MICROS, EventDeduplicator
from core.cursors import EventCursor, to_micros
from core.models import Job, JobEvent, JobEventKind

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def event(job_id: str, version: int, seconds: float = 0) -> JobEvent:
    at = T0 + timedelta(seconds=seconds)
    job = Job(id=job_id, type="noop", owner="alice", payload=None, version=version, updated_at=at)
    return JobEvent(job_id=job_id, version=version, kind=JobEventKind.PROGRESS, at=at, job=job)


FLOOR = EventCursor(to_micros(T0), "", 0)


def test_each_version_of_a_job_is_accepted_once() -> None:
    """A job's event is new once; the same or an older version afterwards is a duplicate."""
    seen = EventDeduplicator(None, FLOOR)

    assert seen.accept(event("a", 2))
    assert not seen.accept(event("a", 2))
    assert not seen.accept(event("a", 1))
    assert seen.accept(event("a", 3))
    assert seen.accept(event("b", 1))


def test_events_at_or_before_the_resume_cursor_are_not_new() -> None:
    """With a start cursor, its job's versions up to it and other jobs' earlier events are skipped."""
    start = EventCursor.of(event("a", 3, seconds=10))
    seen = EventDeduplicator(start, start)

    assert not seen.accept(event("a", 3, seconds=10))
    assert seen.accept(event("a", 4, seconds=11))
    assert not seen.accept(event("b", 7, seconds=5))
    assert seen.accept(event("c", 1, seconds=12))


def test_resync_rereads_a_window_behind_the_newest_event() -> None:
    """A resync re-reads from a little before the newest emitted event, never before the floor."""
    seen = EventDeduplicator(None, FLOOR)
    assert seen.resync_point() == FLOOR

    seen.accept(event("a", 1, seconds=60))

    assert seen.resync_point() == EventCursor(to_micros(T0) + 60_000_000 - RESYNC_WINDOW_MICROS, "", 0)
    seen_early = EventDeduplicator(None, FLOOR)
    seen_early.accept(event("a", 1, seconds=1))
    assert seen_early.resync_point() == FLOOR
