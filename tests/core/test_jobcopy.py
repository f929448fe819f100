"""``copy_job`` and ``created_event``: the cheaper copies of the bulk submission path."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.jobcopy import copy_job
from core.models import DependencyFailure, Job, JobEvent, JobEventKind, JobStatus, new_job_id
from core.submission import created_event, new_job_ids, next_job_id

AT = datetime(2030, 1, 1, tzinfo=UTC)

#: every field away from its default, so that a field the copy missed would show
FULL = Job(
    id=new_job_id(),
    type="noop",
    owner="alice",
    payload={"a": [1, {"b": None}]},
    status=JobStatus.PROCESSING,
    version=7,
    priority=-3,
    max_attempts=9,
    timeout_seconds=11,
    attempts=2,
    progress=42.5,
    progress_message="half",
    result={"r": 1},
    error="boom",
    idempotency_key="k",
    created_at=AT,
    updated_at=AT + timedelta(seconds=1),
    run_at=AT + timedelta(seconds=2),
    started_at=AT + timedelta(seconds=3),
    completed_at=AT + timedelta(seconds=4),
    cancel_requested=True,
    lease_owner="w1",
    lease_until=AT + timedelta(seconds=5),
    enqueued_at=AT + timedelta(seconds=6),
    depends_on=("a", "b"),
    waiting_for=("b",),
    on_dependency_failure=DependencyFailure.RUN,
    flow_id="f",
    expires_in_seconds=60,
    expires_at=AT + timedelta(seconds=7),
    schedule_id="a-schedule",
    concurrency_key="a-key",
)


def test_the_sample_job_sets_every_field_away_from_its_default() -> None:
    """The sample job differs from a bare one in every field, so the copy tests cover them all."""
    bare = Job(id="x", type="t", owner="o", payload=None)
    assert [f.name for f in fields(Job) if getattr(FULL, f.name) == getattr(bare, f.name)] == []


@pytest.mark.parametrize("changes", [{}, {"payload": None}, {"enqueued_at": AT}, {"version": 8, "error": None}])
def test_copy_job_makes_what_replace_makes(changes: dict[str, Any]) -> None:
    """Field for field the job ``replace`` makes, a new object, the original untouched."""
    before = replace(FULL)
    copy = copy_job(FULL, **changes)
    assert copy == replace(FULL, **changes) and copy is not FULL and FULL == before
    with pytest.raises(AttributeError):
        copy.version = 1  # type: ignore[misc]


def test_copy_job_refuses_an_unknown_field() -> None:
    """``copy_job`` refuses a field ``Job`` does not have, as ``replace`` does."""
    with pytest.raises(TypeError, match="no field 'colour'"):
        copy_job(FULL, colour="red")


def test_created_event_is_job_event_of() -> None:
    """The bulk path's CREATED event equals ``JobEvent.of``'s, payload-less job included."""
    event = created_event(FULL, "submitted by alice")
    assert event == JobEvent.of(FULL, JobEventKind.CREATED, "submitted by alice")
    assert event.job.payload is None


def test_new_job_ids_are_distinct_uuid7s() -> None:
    """Ids of one batch look like ``new_job_id``'s: version 7, RFC 4122 variant, time-ordered prefix."""
    import uuid

    ids = new_job_ids(1000)
    assert len(set(ids)) == 1000
    parsed = [uuid.UUID(i) for i in ids]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    single = new_job_id()
    assert abs(int(single[:8], 16) - int(ids[0][:8], 16)) <= 1
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))


def test_next_job_ids_are_distinct_time_ordered_uuid7s_across_refills() -> None:
    """Single ids from the buffered randomness: version 7, RFC 4122 variant, distinct across
    several refills of the buffer, and their time prefix never goes back."""
    import uuid

    before = new_job_id()
    ids = [next_job_id() for _ in range(2000)]  # several buffers' worth
    assert len(set(ids)) == 2000
    parsed = [uuid.UUID(i) for i in ids]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))
    stamps = [i[:13] for i in [before, *ids, new_job_id()]]
    assert stamps == sorted(stamps)


def test_a_forked_child_does_not_reuse_its_parents_buffered_ids() -> None:
    """The buffer is dropped at fork: a child's next ids are not the ones its parent hands out next."""
    import os

    next_job_id()  # the buffer is filled and has ids left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ",".join(next_job_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [next_job_id() for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)
    assert [i[-12:] for i in child] != [i[-12:] for i in parent]
