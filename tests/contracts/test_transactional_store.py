"""The ``TransactionalStore`` contract, run against every store that has the capability (SQLite's,
given its database's queue): what ``open_backends`` offers as ``Backends.transaction``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from core.backends import open_backends
from core.errors import JobNotFoundError
from core.models import Job, JobEvent, JobEventKind, JobStatus, utcnow
from core.ports import Decide, Delivery, JobQueue, JobStore, TransactionalStore
from core.settings import Settings
from tests.contracts.test_job_store import LONG_AGO, created, make_job


@dataclass
class Backend:
    """The capability, and the store and queue it writes."""

    transaction: TransactionalStore
    store: JobStore
    queue: JobQueue


@pytest.fixture(params=["sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh store of each kind that has the capability, with its queue."""
    settings = Settings(data_dir=tmp_path, mongodb_url=None, sqs_endpoint_url=None, redis_url=None)
    async with open_backends(settings) as backends:
        assert backends.transaction is not None
        yield Backend(backends.transaction, backends.store, backends.queue)


def progressed(job: Job) -> tuple[Job, JobEvent]:
    """``job`` one version later, with its PROGRESS event."""
    new = replace(job, version=job.version + 1, updated_at=utcnow(), progress=50.0)
    return new, JobEvent.of(new, JobEventKind.PROGRESS)


async def inserted(backend: Backend) -> Job:
    job = make_job(at=utcnow())
    stored, new = await backend.store.insert(job, created(job), LONG_AGO)
    assert new
    return stored


async def test_insert_enqueues_in_its_transaction(backend: Backend) -> None:
    """A PENDING job inserted is answered with ``enqueued_at`` set, and its message is receivable."""
    job = await inserted(backend)
    assert job.enqueued_at is not None
    [delivery] = await backend.queue.receive(["noop"], 10, 0, 30)
    assert delivery.job_id == job.id


async def test_decide_and_update_writes_the_decision_and_its_event(backend: Backend) -> None:
    """The decided job is written on the read version, and its event stored with it."""
    job = await inserted(backend)
    written, event = await backend.transaction.decide_and_update(job.id, progressed, None, None)
    assert (written.version, written.progress) == (2, 50.0)
    assert event is not None and event.kind is JobEventKind.PROGRESS
    assert (await backend.store.get(job.id)) == written
    stored = await backend.store.list_events(after=None, limit=10, job_id=job.id)
    assert [e.kind for e in stored] == [JobEventKind.CREATED, JobEventKind.PROGRESS]


async def test_decide_and_update_writes_nothing_when_decide_says_none(backend: Backend) -> None:
    """``decide`` answering ``None`` leaves the job as read and answers with it, and no event."""
    job = await inserted(backend)
    answer, event = await backend.transaction.decide_and_update(job.id, lambda _: None, None, None)
    assert (answer, event) == (job, None)
    assert (await backend.store.get(job.id)) == job


async def test_decide_and_update_decides_again_on_a_stale_current(backend: Backend) -> None:
    """A ``current`` older than the stored job is read again and decided on the stored version."""
    job = await inserted(backend)
    newer, _ = await backend.transaction.decide_and_update(job.id, progressed, None, None)
    seen: list[int] = []

    def decide(read: Job) -> tuple[Job, JobEvent]:
        seen.append(read.version)
        return progressed(read)

    written, _ = await backend.transaction.decide_and_update(job.id, decide, job, None)
    assert seen == [1, 2]
    assert written.version == newer.version + 1


async def test_decide_and_update_of_a_missing_job_raises_not_found(backend: Backend) -> None:
    """There is no job to decide on: ``JobNotFoundError``."""
    with pytest.raises(JobNotFoundError):
        await backend.transaction.decide_and_update(make_job().id, progressed, None, None)


async def test_decide_and_update_writes_nothing_when_decide_raises(backend: Backend) -> None:
    """What ``decide`` raises reaches the caller, and nothing is written (nor the message acked)."""
    job = await inserted(backend)
    [delivery] = await backend.queue.receive(["noop"], 10, 0, 30)

    def refuse(_: Job) -> tuple[Job, JobEvent]:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await backend.transaction.decide_and_update(job.id, refuse, None, delivery)
    assert (await backend.store.get(job.id)) == job
    assert (await backend.queue.depths(["noop"]))["noop"].in_flight == 1


async def test_decide_and_update_acks_the_message_with_the_write(backend: Backend) -> None:
    """Given ``ack``, the job's message is deleted in the write's transaction."""
    job = await inserted(backend)
    [delivery] = await backend.queue.receive(["noop"], 10, 0, 30)
    await backend.transaction.decide_and_update(job.id, progressed, None, delivery)
    depth = (await backend.queue.depths(["noop"]))["noop"]
    assert (depth.ready, depth.in_flight, depth.delayed) == (0, 0, 0)


async def test_receive_and_decide_takes_messages_and_writes_their_jobs(backend: Backend) -> None:
    """Each message taken comes with its job as decided and written; the messages are in flight."""
    jobs = {(await inserted(backend)).id for _ in range(3)}
    decided: list[str] = []

    def decide_for(delivery: Delivery) -> Decide:
        decided.append(delivery.job_id)
        return progressed

    taken = await backend.transaction.receive_and_decide(["noop"], 10, 0, 30, decide_for)
    assert {delivery.job_id for delivery, _ in taken} == jobs == set(decided)
    for delivery, outcome in taken:
        assert not isinstance(outcome, Exception)
        written, event = outcome
        assert (written.id, written.version, written.progress) == (delivery.job_id, 2, 50.0)
        assert event is not None
    assert (await backend.queue.depths(["noop"]))["noop"].in_flight == 3


async def test_receive_and_decide_answers_a_failed_decision_with_its_error(backend: Backend) -> None:
    """One job's failing ``decide`` is that message's answer; the other jobs are written, and every
    message stays taken."""
    bad, good = await inserted(backend), await inserted(backend)

    def decide_for(delivery: Delivery) -> Decide:
        if delivery.job_id != bad.id:
            return progressed

        def refuse(_: Job) -> tuple[Job, JobEvent]:
            raise RuntimeError("refused")

        return refuse

    taken = dict(await backend.transaction.receive_and_decide(["noop"], 10, 0, 30, decide_for))
    outcomes = {delivery.job_id: outcome for delivery, outcome in taken.items()}
    assert isinstance(outcomes[bad.id], RuntimeError)
    assert (await backend.store.get(bad.id)) == bad
    written = await backend.store.get(good.id)
    assert written is not None and written.version == 2
    assert (await backend.queue.depths(["noop"]))["noop"].in_flight == 2


async def test_update_to_pending_enqueues_in_its_transaction(backend: Backend) -> None:
    """A job written PENDING with no message gets one with the write, ``enqueued_at`` set."""
    job = await inserted(backend)
    [delivery] = await backend.queue.receive(["noop"], 10, 0, 30)
    await backend.queue.ack(delivery)
    retried = replace(job, version=2, updated_at=utcnow(), enqueued_at=None, status=JobStatus.PENDING)
    written = await backend.store.update(retried, job.version, None)
    assert written is not None and written.enqueued_at is not None
    assert [d.job_id for d in await backend.queue.receive(["noop"], 10, 0, 30)] == [job.id]
