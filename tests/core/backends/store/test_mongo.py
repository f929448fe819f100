"""MongoDB store specifics: TTL retention, the documents as stored, and an unreachable server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pymongo.errors import BulkWriteError

from core.backends.store.mongo import MongoJobStore, _duplicates
from core.backends.store.mongo_schema import EVENTS_TTL_INDEX, JOBS_TTL_INDEX
from core.errors import BackendUnavailableError
from core.models import Job, JobEvent, JobEventKind, new_job_id, utcnow
from core.settings import Settings
from tests.support.servers import free_port


@pytest.fixture
def mongo_settings(mongo_url: str, mongo_database: str) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        return Settings(mongodb_url=mongo_url, mongodb_database=mongo_database, **overrides)  # type: ignore[arg-type]

    return make


async def test_retention_creates_ttl_indexes(mongo_settings: Callable[..., Settings]) -> None:
    """With ``retention_days`` set, finished jobs and events get TTL indexes of that length."""
    store = await MongoJobStore.open(mongo_settings(retention_days=2))
    try:
        jobs, events = await store.jobs.index_information(), await store.events.index_information()
    finally:
        await store.close()
    assert jobs[JOBS_TTL_INDEX]["expireAfterSeconds"] == 2 * 86_400
    assert events[EVENTS_TTL_INDEX]["expireAfterSeconds"] == 2 * 86_400


async def test_no_retention_means_no_ttl_index(mongo_settings: Callable[..., Settings]) -> None:
    """With ``retention_days`` unset nothing expires, even if an earlier configuration set it."""
    await (await MongoJobStore.open(mongo_settings(retention_days=1))).close()
    store = await MongoJobStore.open(mongo_settings(retention_days=None))
    try:
        assert JOBS_TTL_INDEX not in await store.jobs.index_information()
        assert EVENTS_TTL_INDEX not in await store.events.index_information()
    finally:
        await store.close()


async def test_payload_is_stored_apart_from_the_fields(mongo_settings: Callable[..., Settings]) -> None:
    """Client JSON is stored as bytes, so keys MongoDB would refuse round-trip unchanged."""
    store = await MongoJobStore.open(mongo_settings())
    try:
        job = Job(id=new_job_id(), type="noop", owner="alice", payload={"$set": {"a.b": 2**63 + 1}})
        await store.insert(job, JobEvent.of(job, JobEventKind.CREATED), utcnow())
        raw = await store.jobs.find_one({"_id": job.id})
        assert raw is not None and isinstance(raw["payload"], bytes)
        assert await store.get(job.id) == job
    finally:
        await store.close()


async def test_open_fails_fast_when_mongodb_is_unreachable() -> None:
    """Opening a store on a port nobody listens on raises ``BackendUnavailableError`` quickly."""
    url = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        await MongoJobStore.open(Settings(mongodb_url=url))
    assert time.monotonic() - started < 5


async def test_insert_many_of_a_job_already_written_is_a_retried_write(
    mongo_settings: Callable[..., Settings],
) -> None:
    """A job whose document is already there under its own id (a retried write that went
    through) is answered as new, as ``insert`` answers it, with no second document or event."""
    store = await MongoJobStore.open(mongo_settings())
    try:
        done, fresh = (Job(id=new_job_id(), type="noop", owner="alice", payload={}) for _ in range(2))
        events = {j.id: JobEvent.of(j, JobEventKind.CREATED) for j in (done, fresh)}
        await store.insert(done, events[done.id], utcnow())
        answers = await store.insert_many([(done, events[done.id]), (fresh, events[fresh.id])], utcnow())
        count = await store.jobs.count_documents({}), await store.events.count_documents({})
    finally:
        await store.close()
    assert answers == [(done, True), (fresh, True)]
    assert count == (2, 2)


def test_a_bulk_refusal_other_than_a_duplicate_key_fails_the_call() -> None:
    """Duplicate keys are answered item by item; any other write error or a write concern error
    (the writes that happened may not be durable) is ``BackendUnavailableError``."""
    duplicate = {"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"}
    assert _duplicates(BulkWriteError({"writeErrors": [duplicate], "writeConcernErrors": []}), "x") == {1}
    invalid = {"index": 0, "code": 121, "errmsg": "Document failed validation"}
    with pytest.raises(BackendUnavailableError, match="failed validation"):
        _duplicates(BulkWriteError({"writeErrors": [duplicate, invalid], "writeConcernErrors": []}), "x")
    concern = {"code": 64, "errmsg": "waiting for replication timed out"}
    with pytest.raises(BackendUnavailableError, match="replication"):
        _duplicates(BulkWriteError({"writeErrors": [duplicate], "writeConcernErrors": [concern]}), "x")
