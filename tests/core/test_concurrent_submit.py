"""Concurrent ``JobService.submit`` calls on the embedded and the distributed backends: their store
writes go together in one ``insert_many``, yet each caller gets its own answer (its job, the job
its idempotency key already made, or its own refusal), and each job is stored, published and
queued once, as when they came one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from core.backends import open_backends
from core.backends.store.sqlite import SqliteJobStore
from core.errors import BackendUnavailableError, ConflictError, UserFacingError, ValidationError
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobEvent, JobEventKind, JobId, Principal
from core.ports import ALL_EVENTS, JobFilter
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from tests.support.services import BACKENDS, service_on
from tests.support.tcp_proxy import TcpProxy

ALICE = Principal("alice")
ADMIN = Principal("root", "admin")
MANY = 30


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    """A service on each kind of backends (distributed: MongoDB, SQS, Redis of this test's own)."""
    async with service_on(request, tmp_path, max_payload_bytes=1024, sweep_grace_seconds=0) as service:
        yield service


def count_batches(service: JobService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the store's ``insert_many`` calls from now on (the calls themselves are real)."""
    sizes: list[int] = []
    insert_many = service.store.insert_many

    async def counted(items: Sequence[tuple[Job, JobEvent]], since: datetime) -> list[tuple[Job, bool]]:
        sizes.append(len(items))
        return await insert_many(items, since)

    monkeypatch.setattr(service.store, "insert_many", counted)
    return sizes


async def gather_answers(service: JobService, requests: list[SubmitRequest]) -> list[Job | BaseException]:
    return await asyncio.gather(*(service.submit(ALICE, r) for r in requests), return_exceptions=True)


async def queued_ids(service: JobService, count: int) -> list[JobId]:
    """Ids of the messages waiting for noop jobs (up to ``count``; hidden for the rest of the test)."""
    got: list[JobId] = []
    while len(got) < count:
        batch = await service.queue.receive(["noop"], 10, 1, 30)
        if not batch:
            break
        got += [d.job_id for d in batch]
    return got


async def test_concurrent_submits_are_stored_published_and_queued_once_each(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller gets its own job, with its own payload; the writes were coalesced; each job has
    one CREATED event stored and published, one message, and is marked sent."""
    sizes = count_batches(service, monkeypatch)
    requests = [SubmitRequest("noop", {"note": str(n)}, priority=n) for n in range(MANY)]
    async with service.bus.subscribe([ALL_EVENTS]) as subscription:
        jobs = await gather_answers(service, requests)
        published: list[JobEvent] = []
        async with asyncio.timeout(10):
            async for message in subscription:
                assert isinstance(message, JobEvent)
                published.append(message)
                if len(published) == MANY:
                    break
    assert all(isinstance(job, Job) for job in jobs)
    assert [(j.payload, j.priority, j.owner) for j in jobs if isinstance(j, Job)] == [
        ({"note": str(n)}, n, "alice") for n in range(MANY)
    ]
    ids = sorted(j.id for j in jobs if isinstance(j, Job))
    assert len(set(ids)) == MANY
    assert sum(sizes) == MANY and len(sizes) < MANY  # the first alone, the rest together
    assert sorted(e.job_id for e in published) == ids
    assert {(e.kind, e.version, e.message) for e in published} == {
        (JobEventKind.CREATED, 1, "submitted by alice")
    }
    for job_id in ids:
        events = await service.store.list_events(after=None, limit=5, job_id=job_id)
        assert [(e.kind, e.version) for e in events] == [(JobEventKind.CREATED, 1)]
    assert sorted(await queued_ids(service, MANY + 1)) == ids
    stored = await service.store.get_many(ids)
    assert all(job.enqueued_at is not None and job.version == 1 for job in stored.values())
    assert await service.count(ADMIN, JobFilter()) == MANY


async def test_concurrent_submits_with_one_key_in_one_batch_share_one_job(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submits racing with one key get one job, created once (one event, one message), however
    the batches fall; a key held before the race answers with the earlier job."""
    held = await service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="held"))
    assert await queued_ids(service, 2) == [held.id]
    sizes = count_batches(service, monkeypatch)
    requests = [
        SubmitRequest("noop", {"n": n}, idempotency_key=("race" if n % 2 else "held") if n % 3 else None)
        for n in range(MANY)
    ]
    answers = await gather_answers(service, requests)
    assert max(sizes) > 1
    jobs = [a for a in answers if isinstance(a, Job)]
    assert len(jobs) == MANY
    raced = {j.id for j, r in zip(jobs, requests, strict=True) if r.idempotency_key == "race"}
    assert len(raced) == 1
    assert {j.id for j, r in zip(jobs, requests, strict=True) if r.idempotency_key == "held"} == {held.id}
    fresh = [j for j, r in zip(jobs, requests, strict=True) if r.idempotency_key is None]
    assert len({j.id for j in fresh}) == len(fresh) == 10
    new_ids = sorted(raced | {j.id for j in fresh})
    assert sorted(await queued_ids(service, len(new_ids) + 1)) == new_ids
    [race_id] = raced
    assert len(await service.store.list_events(after=None, limit=5, job_id=race_id)) == 1
    assert await service.count(ADMIN, JobFilter()) == 1 + len(new_ids)


async def test_an_invalid_submit_among_concurrent_ones_fails_alone(service: JobService) -> None:
    """Each refusal goes to its own caller, with the error ``submit`` alone gives; the others' jobs
    are created."""
    requests = [SubmitRequest("noop", {"n": n}) for n in range(MANY)]
    requests[7] = SubmitRequest("noop", {}, priority=10**6)
    requests[12] = SubmitRequest("nope", {})
    answers = await gather_answers(service, requests)
    alone: list[UserFacingError] = []
    for n in (7, 12):
        with pytest.raises(UserFacingError) as info:
            await service.submit(ALICE, requests[n])
        alone.append(info.value)
    for n, error in zip((7, 12), alone, strict=True):
        answer = answers[n]
        assert isinstance(answer, UserFacingError)
        assert (type(answer), answer.field, str(answer)) == (type(error), error.field, str(error))
    assert isinstance(answers[7], ValidationError) and answers[7].field == "priority"
    jobs = [a for n, a in enumerate(answers) if n not in (7, 12)]
    assert all(isinstance(j, Job) for j in jobs)
    assert await service.count(ADMIN, JobFilter()) == MANY - 2


async def test_a_failed_sqlite_write_fails_its_batch_and_stores_none_of_it(tmp_path: Path) -> None:
    """Embedded: when the store refuses the batch's write (here a trigger refuses one of its
    rows), every submit of that batch raises ``BackendUnavailableError`` and none is stored or
    queued; the next submits go through."""
    settings = Settings(data_dir=tmp_path)
    async with open_backends(settings) as backends:
        service = JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            transaction=backends.transaction,
        )
        assert isinstance(service.store, SqliteJobStore)
        await service.store.db.write(
            lambda conn: conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.idempotency_key = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
        await service.submit(ALICE, SubmitRequest("noop", {"note": "before"}))
        requests = [SubmitRequest("noop", {}, idempotency_key="poison" if n == 3 else None) for n in range(8)]
        answers = await gather_answers(service, requests)
        failed = [a for a in answers if not isinstance(a, Job)]
        assert isinstance(answers[3], BackendUnavailableError)
        assert len(failed) > 1 and all(isinstance(a, BackendUnavailableError) for a in failed)
        stored = 1 + len(answers) - len(failed)
        assert await service.count(ADMIN, JobFilter()) == stored
        assert (await service.queue.depths(["noop"]))["noop"].ready == stored
        after = await gather_answers(service, [SubmitRequest("noop", {"note": str(n)}) for n in range(3)])
        assert all(isinstance(a, Job) for a in after)


async def test_submits_while_mongodb_is_down_fail_with_backend_unavailable(
    mongo_url: str, distributed_settings: Callable[..., Settings]
) -> None:
    """Distributed: with MongoDB unreachable, every concurrent submit raises
    ``BackendUnavailableError`` (none is answered as created); once it is back, submits work."""
    port = int(mongo_url.rstrip("/").rsplit(":", 1)[1])
    with TcpProxy(port) as proxy:
        url = f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true&serverSelectionTimeoutMS=1000"
        settings = distributed_settings(mongodb_url=url, redis_url=None)
        async with open_backends(settings) as backends:
            await backends.queue.ensure_queues(["noop"])
            service = JobService(
                backends.store,
                backends.queue,
                backends.bus,
                JobTypeRegistry(JOB_TYPES),
                settings,
                transaction=backends.transaction,
            )
            proxy.cut()
            answers = await gather_answers(service, [SubmitRequest("noop", {"n": n}) for n in range(6)])
            assert all(isinstance(a, BackendUnavailableError) for a in answers)
            proxy.restore()
            async with asyncio.timeout(20):
                while True:  # the driver finds the server again on its own schedule
                    try:
                        job = await service.submit(ALICE, SubmitRequest("noop", {}))
                        break
                    except BackendUnavailableError:
                        continue
            assert await service.count(ADMIN, JobFilter()) == 1
            assert await queued_ids(service, 2) == [job.id]


async def test_a_conflict_of_one_item_fails_only_its_own_submit(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch item the store refuses on its own (an idempotency key that kept changing hands:
    ``ConflictError``, made to happen here for the key "contested") fails only its caller; the
    others of its batch are stored again one by one, each created and queued once."""
    insert, insert_many = service.store.insert, service.store.insert_many

    async def contested(job: Job, event: JobEvent, since: datetime) -> tuple[Job, bool]:
        if job.idempotency_key == "contested":
            raise ConflictError("idempotency key 'contested' kept changing hands")
        return await insert(job, event, since)

    async def bulk(items: Sequence[tuple[Job, JobEvent]], since: datetime) -> list[tuple[Job, bool]]:
        others = [item for item in items if item[0].idempotency_key != "contested"]
        if len(others) == len(items):
            return await insert_many(items, since)
        # SQLite's write is one transaction (all or nothing); MongoDB's may have written the others.
        if not isinstance(service.store, SqliteJobStore):
            await insert_many(others, since)
        raise ConflictError("idempotency key 'contested' kept changing hands")

    monkeypatch.setattr(service.store, "insert", contested)
    monkeypatch.setattr(service.store, "insert_many", bulk)
    keys = {4: "contested", 6: "k", 8: "k"}
    requests = [SubmitRequest("noop", {"n": n}, idempotency_key=keys.get(n)) for n in range(10)]
    answers = await gather_answers(service, requests)
    assert isinstance(answers[4], ConflictError)
    jobs = [a for n, a in enumerate(answers) if n != 4]
    assert all(isinstance(j, Job) for j in jobs)
    created = {j.id for j in jobs if isinstance(j, Job)}
    assert len(created) == 8  # the two with key "k" share one job
    assert isinstance(answers[6], Job) and isinstance(answers[8], Job) and answers[6].id == answers[8].id
    assert sorted(await queued_ids(service, 9)) == sorted(created)
    for job_id in created:
        events = await service.store.list_events(after=None, limit=5, job_id=job_id)
        assert [(e.kind, e.version) for e in events] == [(JobEventKind.CREATED, 1)]
    assert await service.count(ADMIN, JobFilter()) == 8
