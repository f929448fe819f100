"""The embedded store's one-transaction write path (``TransactionalStore``) against the ports' path.

On SQLite the service reads, decides, writes and acks in one transaction; through the ports alone it
reads, writes conditionally (retrying on conflict) and acks after. Both must give the same answers,
the same errors, the same events and leave the same queue behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.backends.store.sqlite import SqliteJobStore
from core.errors import InvalidStateError, JobNotFoundError, LeaseLostError
from core.jobtypes import JobTypeRegistry
from core.models import Claim, ClaimDecision, Job, JobEvent, JobStatus, LogLevel, Principal
from core.service import ClaimResult, JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES

ALICE = Principal("alice")


@asynccontextmanager
async def embedded(data_dir: Path, *, one_transaction: bool) -> AsyncIterator[JobService]:
    settings = Settings(data_dir=data_dir)
    async with open_backends(settings) as backends:
        service = JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            # Without it, the ports' path: read, conditional update, ack.
            transaction=backends.transaction if one_transaction else None,
        )
        yield service


def _job(job: Job) -> tuple[Any, ...]:
    return (
        job.status,
        job.version,
        job.attempts,
        job.lease_owner,
        job.cancel_requested,
        job.result,
        job.error,
    )


async def _queue(service: JobService) -> tuple[int, int, int, int]:
    depth = (await service.queue.depths(["noop"]))["noop"]
    return depth.ready, depth.in_flight, depth.delayed, depth.dead


async def _trace(service: JobService) -> list[Any]:
    """A script of worker-side writes, good and bad; what each returned or raised, and the end state."""
    trace: list[Any] = []
    published: list[JobEvent] = []
    service.listeners.append(published.append)

    async def step(name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await call()
        except (LeaseLostError, InvalidStateError, JobNotFoundError) as exc:
            trace.append((name, type(exc).__name__, str(exc).replace(job.id, "<id>")))
            return None
        if isinstance(value, Job):
            trace.append((name, _job(value)))
        else:
            trace.append((name, value.decision, value.job and _job(value.job)))
        return value

    job = await service.submit(ALICE, SubmitRequest("noop", {"note": "x"}))
    other = await service.submit(ALICE, SubmitRequest("noop", {}))
    first = (await service.queue.receive(["noop"], 1, 0, 30))[0]
    claimed = await step("claim", lambda: service.claim(job.id, "w1", 30))
    assert claimed.job.payload == {"note": "x"}  # the claim gives the handler its payload
    await step("claim again", lambda: service.claim(job.id, "w2", 30))
    await step("claim missing", lambda: service.claim("no-such-job", "w1", 30))
    claim = claimed.claim
    stale = claimed.job
    beat = await step("heartbeat", lambda: service.heartbeat(claim, 60, current=stale))
    await step("log on a stale job", lambda: service.log(claim, LogLevel.INFO, "hello", current=stale))
    wrong = Claim(job.id, "w2", 1)
    await step("complete by a stranger", lambda: service.complete(wrong, {"no": 1}, ack=first))
    trace.append(("queue after refused complete", await _queue(service)))
    await step("complete", lambda: service.complete(claim, {"ok": True}, current=beat, ack=first))
    trace.append(("queue after complete", await _queue(service)))
    await step("complete twice", lambda: service.complete(claim, {"ok": True}, ack=first))
    # Cancellation of the other job while it runs, finished by its worker with an ack.
    second = (await service.queue.receive(["noop"], 1, 0, 30))[0]
    assert second.job_id == other.id
    other_claim = (await service.claim(other.id, "w1", 30)).claim
    assert other_claim is not None
    await service.cancel(ALICE, other.id)
    await step("finish cancelled", lambda: service.finish_cancelled(other_claim, ack=second))
    trace.append(("queue at the end", await _queue(service)))
    trace.append(("events", [(e.version, e.kind, e.message) for e in published if e.job_id == job.id]))
    stored = await service.store.list_events(after=None, limit=100, job_id=job.id)
    trace.append(("stored events", [(e.version, e.kind, e.message) for e in stored]))
    return trace


async def test_one_transaction_answers_as_the_ports_do(tmp_path: Path) -> None:
    async with embedded(tmp_path / "one", one_transaction=True) as one:
        fast = await _trace(one)
    async with embedded(tmp_path / "ports", one_transaction=False) as ports:
        slow = await _trace(ports)
    assert fast == slow
    assert ("complete by a stranger", "LeaseLostError", "job <id>: claim of w2#1 is no longer held") in fast


async def test_complete_acks_in_the_same_commit(tmp_path: Path) -> None:
    """One group commit writes the completion, its event and the message's deletion (or none of them)."""
    async with embedded(tmp_path, one_transaction=True) as service:
        job = await service.submit(ALICE, SubmitRequest("noop", {}))
        delivery = (await service.queue.receive(["noop"], 1, 0, 30))[0]
        claim = (await service.claim(job.id, "w1", 30)).claim
        assert claim is not None
        writes = 0
        db = service.store.db  # type: ignore[attr-defined]
        write = db.write

        async def counted(op: Any) -> Any:
            nonlocal writes
            writes += 1
            return await write(op)

        db.write = counted
        done = await service.complete(claim, {"ok": True}, ack=delivery)
        assert writes == 1 and done.status is JobStatus.COMPLETED
        assert (await service.queue.depths(["noop"]))["noop"].in_flight == 0


async def test_an_ack_with_an_old_receipt_keeps_the_redelivered_message(tmp_path: Path) -> None:
    """A message received again (the first receiver seemed dead) is not deleted by the first's ack."""
    async with embedded(tmp_path, one_transaction=True) as service:
        job = await service.submit(ALICE, SubmitRequest("noop", {}))
        old = (await service.queue.receive(["noop"], 1, 0, 0.001))[0]
        await asyncio.sleep(0.01)  # the visibility timeout of 1 ms passes
        new = (await service.queue.receive(["noop"], 1, 0, 30))[0]
        assert new.receipt != old.receipt
        claim = (await service.claim(job.id, "w1", 30)).claim
        assert claim is not None
        await service.complete(claim, {}, ack=old)
        assert (await service.queue.depths(["noop"]))["noop"].in_flight == 1


async def test_the_embedded_backends_have_the_transaction(tmp_path: Path) -> None:
    """``open_backends`` offers the SQLite store's one transaction when the queue is its database's."""
    async with open_backends(Settings(data_dir=tmp_path)) as backends:
        assert isinstance(backends.store, SqliteJobStore)
        assert backends.transaction is backends.store


async def test_sqs_beside_sqlite_gets_the_ports_path(
    tmp_path: Path, distributed_settings: Callable[..., Settings]
) -> None:
    """A SQLite store beside another queue (SQS) is offered no transaction and enqueues nothing."""
    settings = distributed_settings(data_dir=tmp_path, mongodb_url=None, redis_url=None)
    async with open_backends(settings) as backends:
        assert isinstance(backends.store, SqliteJobStore)
        assert backends.transaction is None
        service = JobService(backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings)
        await backends.queue.ensure_queues(["noop"])
        job = await service.submit(ALICE, SubmitRequest("noop", {}))
        assert (await backends.queue.receive(["noop"], 1, 1, 30))[0].job_id == job.id


@pytest.mark.parametrize("one_transaction", [True, False])
async def test_concurrent_claims_one_runs(tmp_path: Path, one_transaction: bool) -> None:
    async with embedded(tmp_path, one_transaction=one_transaction) as service:
        job = await service.submit(ALICE, SubmitRequest("noop", {}))
        results = await asyncio.gather(*(service.claim(job.id, f"w{i}", 30) for i in range(8)))
        assert sorted(r.decision.value for r in results) == ["drop"] * 7 + ["run"]
        events = await service.store.list_events(after=None, limit=10, job_id=job.id)
        assert [e.version for e in events] == [1, 2]


async def _claims_trace(service: JobService) -> list[Any]:
    """Messages of jobs in every state a claim distinguishes; what receiving and claiming them gave."""
    # ``held`` runs elsewhere under a live lease, and its message is back.
    held = await service.submit(ALICE, SubmitRequest("noop", {"note": "held"}))
    [held_message] = await service.queue.receive(["noop"], 1, 0, 30)
    assert (await service.claim(held.id, "elsewhere", 300)).decision is ClaimDecision.RUN
    await service.queue.release(held_message, 0)
    run = await service.submit(ALICE, SubmitRequest("noop", {"note": "run"}))
    cancelled = await service.submit(ALICE, SubmitRequest("noop", {"note": "cancelled"}))
    await service.cancel(ALICE, cancelled.id)
    gone = await service.submit(ALICE, SubmitRequest("noop", {"note": "gone"}))
    db = service.store.db  # type: ignore[attr-defined]
    await db.write(lambda conn: conn.execute("DELETE FROM jobs WHERE id = ?", (gone.id,)))
    names = {run.id: "run", cancelled.id: "cancelled", held.id: "held", gone.id: "gone"}
    received = await service.receive_claims(["noop"], 10, 0, "w1", 30)
    trace: list[Any] = []
    for delivery, result in received:
        assert isinstance(result, ClaimResult)
        trace.append((names[delivery.job_id], result.decision, result.job and _job(result.job), result.claim))
    return sorted(trace, key=lambda item: str(item[0]))


async def test_receive_claims_answers_as_receive_then_claim_does(tmp_path: Path) -> None:
    async with embedded(tmp_path / "one", one_transaction=True) as one:
        fast = await _claims_trace(one)
    async with embedded(tmp_path / "ports", one_transaction=False) as ports:
        slow = await _claims_trace(ports)
    assert [(name, decision) for name, decision, *_ in fast] == [
        ("cancelled", ClaimDecision.DROP),
        ("gone", ClaimDecision.DROP),
        ("held", ClaimDecision.DROP),
        ("run", ClaimDecision.RUN),
    ]
    strip = [(n, d, j, c and (c.worker_id, c.attempt)) for n, d, j, c in fast]
    assert strip == [(n, d, j, c and (c.worker_id, c.attempt)) for n, d, j, c in slow]


async def test_a_claim_that_fails_leaves_the_other_claims_and_its_message_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path, one_transaction=True) as service:
        good = await service.submit(ALICE, SubmitRequest("noop", {}, priority=1))
        bad = await service.submit(ALICE, SubmitRequest("noop", {}))
        decider = service._claim_decider

        def failing_for_bad(*args: Any) -> Any:
            decide, box = decider(*args)

            def maybe_fail(job: Job) -> Any:
                outcome = decide(job)
                if job.id == bad.id:
                    raise RuntimeError("boom")  # after deciding: nothing of it may be written
                return outcome

            return maybe_fail, box

        monkeypatch.setattr(service, "_claim_decider", failing_for_bad)
        received = await service.receive_claims(["noop"], 10, 0, "w1", 30)
        outcomes = {d.job_id: r for d, r in received}
        assert isinstance(outcomes[bad.id], RuntimeError)
        good_claim = outcomes[good.id]
        assert isinstance(good_claim, ClaimResult) and good_claim.decision is ClaimDecision.RUN
        assert (await service.store.get(bad.id)).status is JobStatus.PENDING  # type: ignore[union-attr]
        assert (await service.store.get(good.id)).status is JobStatus.PROCESSING  # type: ignore[union-attr]
        assert (await service.queue.depths(["noop"]))["noop"].in_flight == 2


async def test_a_receive_cancelled_while_its_take_commits_answers_with_what_it_took(tmp_path: Path) -> None:
    """The take commits anyway: its claims must reach the caller, or their jobs wait out their leases."""
    async with embedded(tmp_path, one_transaction=True) as service:
        job = await service.submit(ALICE, SubmitRequest("noop", {}))
        db = service.store.db  # type: ignore[attr-defined]
        write, committed, proceed = db.write, asyncio.Event(), asyncio.Event()

        async def slow_write(op: Any) -> Any:
            value = await write(op)
            committed.set()
            await proceed.wait()
            return value

        db.write = slow_write
        receiving = asyncio.create_task(service.receive_claims(["noop"], 10, 5, "w1", 30))
        await committed.wait()
        receiving.cancel()
        proceed.set()
        [(delivery, claimed)] = await receiving
        assert delivery.job_id == job.id and isinstance(claimed, ClaimResult)
        assert claimed.decision is ClaimDecision.RUN
