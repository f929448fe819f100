"""MongoDB: concurrent submissions' CREATED events go out in one ``insert_many``; each caller
learns its own event's fate (a duplicate is success: events are keyed by job id and version)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo.errors import BulkWriteError

from core.backends.store.mongo import MongoJobStore, _bulk_outcomes, _event_document
from core.errors import BackendUnavailableError
from core.models import Job, JobEvent, JobEventKind, new_job_id, utcnow
from core.settings import Settings


@pytest.fixture
async def store(mongo_url: str, mongo_database: str) -> AsyncIterator[MongoJobStore]:
    store = await MongoJobStore.open(Settings(mongodb_url=mongo_url, mongodb_database=mongo_database))
    yield store
    await store.close()


def job() -> Job:
    return Job(id=new_job_id(), type="noop", owner="alice", payload={})


async def test_an_event_written_before_does_not_fail_the_others_of_its_batch(store: MongoJobStore) -> None:
    """One job's CREATED event already stored (a retried write): every insert of the batch succeeds,
    and each job has its event exactly once."""
    jobs = [job() for _ in range(12)]
    events = {j.id: JobEvent.of(j, JobEventKind.CREATED, "submitted") for j in jobs}
    await store.events.insert_one(_event_document(events[jobs[5].id]))
    since = utcnow() - timedelta(days=1)
    results = await asyncio.gather(*(store.insert(j, events[j.id], since) for j in jobs))
    assert [created for _, created in results] == [True] * 12
    for j in jobs:
        assert await store.list_events(after=None, limit=5, job_id=j.id) == [events[j.id]]


def bulk_error(
    write_errors: list[dict[str, object]], concern_errors: list[object] | None = None
) -> BulkWriteError:
    return BulkWriteError(
        {"writeErrors": write_errors, "writeConcernErrors": concern_errors or [], "nInserted": 0}
    )


def test_bulk_outcomes_fail_only_the_writes_that_failed() -> None:
    """After a partly failed unordered write: duplicates succeed, other errors fail their own write."""
    error = bulk_error(
        [{"index": 1, "code": 11000, "errmsg": "duplicate"}, {"index": 2, "code": 2, "errmsg": "bad value"}]
    )
    ok, duplicate, bad, also_ok = _bulk_outcomes("event insert", 4, error)
    assert ok is None and duplicate is None and also_ok is None
    assert isinstance(bad, BackendUnavailableError) and "bad value" in str(bad)


def test_bulk_outcomes_with_a_write_concern_error_fail_every_write() -> None:
    """A write-concern error leaves the whole batch unconfirmed: every caller gets an error."""
    with pytest.raises(BackendUnavailableError, match="write concern"):
        _bulk_outcomes("event insert", 3, bulk_error([], [{"code": 64, "errmsg": "write concern timeout"}]))
