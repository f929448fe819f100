"""``JobService.submit_many`` on the embedded and the distributed backends: the answers, events and
messages of ``submit`` called once per input, with the valid jobs stored by one bulk write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.backends import open_backends
from core.errors import UserFacingError, ValidationError
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobEvent, JobEventKind, JobStatus, Principal
from core.ports import ALL_EVENTS, JobFilter
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from tests.support.services import BACKENDS, service_on
from tests.support.tcp_proxy import TcpProxy

ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", "admin")

#: inputs covering every refusal ``submit`` makes, between valid ones
MIXED = [
    SubmitRequest("noop", {"note": "first"}),
    SubmitRequest("nope", {}),
    SubmitRequest("sleep", {"seconds": "soon"}),
    SubmitRequest("noop", [1, 2]),  # type: ignore[arg-type]
    SubmitRequest("noop", {"note": "x" * 2000}),
    SubmitRequest("noop", {"$jobpulse_blob": {}}),
    SubmitRequest("noop", {}, priority=10**6),
    SubmitRequest("noop", {}, delay_seconds=-1),
    SubmitRequest("noop", {}, max_attempts=0),
    SubmitRequest("noop", {}, timeout_seconds=0),
    SubmitRequest("noop", {}, idempotency_key=""),
    SubmitRequest("flaky", {"fail_times": 1}, priority=3, max_attempts=4, timeout_seconds=9),
    SubmitRequest("noop", {"note": "later"}, delay_seconds=3600),
]


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    """A service on each kind of backends (distributed: MongoDB, SQS, Redis of this test's own)."""
    async with service_on(request, tmp_path, max_payload_bytes=1024, sweep_grace_seconds=0) as service:
        yield service


def outcome(answer: Job | UserFacingError) -> tuple[object, ...]:
    """What a caller can tell of an answer, ids, times and owner aside."""
    if isinstance(answer, UserFacingError):
        return (type(answer).__name__, answer.field, str(answer))
    return (
        answer.type,
        answer.payload,
        answer.status,
        answer.version,
        answer.priority,
        answer.max_attempts,
        answer.timeout_seconds,
        answer.idempotency_key,
        answer.run_at is not None,
        answer.enqueued_at is not None,
    )


async def one_by_one(service: JobService, principal: Principal, requests: list[SubmitRequest]) -> list[Any]:
    answers: list[Any] = []
    for request in requests:
        try:
            answers.append(await service.submit(principal, request))
        except UserFacingError as exc:
            answers.append(exc)
    return answers


async def test_answers_are_those_of_submit_one_by_one(service: JobService) -> None:
    """Every input gets, in order, what ``submit`` answers for it: the job, or the same refusal."""
    bulk = await service.submit_many(ALICE, MIXED)
    single = await one_by_one(service, BOB, MIXED)
    assert [outcome(a) for a in bulk] == [outcome(a) for a in single]
    created = [a for a in bulk if isinstance(a, Job)]
    assert len(created) == 3 and {j.owner for j in created} == {"alice"}
    for job in created:
        # Distributed: the answer is the job as inserted; its send is marked on the stored one
        # (an hour's delay is past SQS's longest: that job waits in the store for the sweeper).
        stored = await service.store.get(job.id)
        assert stored is not None and replace(stored, enqueued_at=job.enqueued_at) == job
        assert (stored.enqueued_at is not None) is (job.run_at is None or job.enqueued_at is not None)
    assert await service.count(ADMIN, JobFilter(owner="alice")) == 3


async def test_every_new_job_has_its_created_event_stored_and_published(service: JobService) -> None:
    """Each created job's CREATED event is stored and published; a repeated key adds none."""
    first = await service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="held"))
    requests = [
        SubmitRequest("noop", {"note": str(n)}, idempotency_key="held" if n == 2 else None) for n in range(4)
    ]
    async with service.bus.subscribe([ALL_EVENTS]) as subscription:
        answers = await service.submit_many(ALICE, requests)
        created = [a for a in answers if isinstance(a, Job) and a.id != first.id]
        published: list[JobEvent] = []
        async with asyncio.timeout(10):
            async for message in subscription:
                assert isinstance(message, JobEvent)
                published.append(message)
                if len(published) == len(created):
                    break
    assert len(created) == 3
    assert {(e.job_id, e.kind, e.message) for e in published} == {
        (j.id, JobEventKind.CREATED, "submitted by alice") for j in created
    }
    for job in created:
        stored = await service.store.list_events(after=None, limit=10, job_id=job.id)
        assert [(e.kind, e.version, e.message) for e in stored] == [
            (JobEventKind.CREATED, 1, "submitted by alice")
        ]
    assert len(await service.store.list_events(after=None, limit=10, job_id=first.id)) == 1


async def test_idempotency_keys_hold_within_a_call_and_across_calls(service: JobService) -> None:
    """A key repeated within one call, used before, or sent by concurrent calls makes one job."""
    before = await service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="old"))
    answers = await service.submit_many(
        ALICE,
        [
            SubmitRequest("noop", {"note": "a"}, idempotency_key="new"),
            SubmitRequest("noop", {"note": "b"}, idempotency_key="old"),
            SubmitRequest("noop", {"note": "c"}, idempotency_key="new"),
            SubmitRequest("nope", {}, idempotency_key="new"),
        ],
    )
    assert isinstance(answers[0], Job) and answers[0].payload == {"note": "a"}
    assert answers[1].id == before.id and answers[2] == answers[0]
    assert isinstance(answers[3], UserFacingError)
    racing = await asyncio.gather(
        *(
            service.submit_many(
                BOB,
                [
                    SubmitRequest("noop", {"n": n}, idempotency_key=k)
                    for k in ("x", "y", "z")[:: 1 - 2 * (n % 2)]
                ],
            )
            for n in range(6)
        )
    )
    ids: dict[str | None, set[str]] = {}
    for batch in racing:
        for answer in batch:
            assert isinstance(answer, Job)
            ids.setdefault(answer.idempotency_key, set()).add(answer.id)
    assert {k: len(v) for k, v in ids.items()} == {"x": 1, "y": 1, "z": 1}
    assert await service.count(ADMIN, JobFilter()) == 2 + 3


async def test_new_jobs_are_queued_by_priority_and_delayed_ones_wait(service: JobService) -> None:
    """Every new job gets its message: the due ones receivable (priority first on the embedded
    queue), a delayed one only at its ``run_at``; a duplicate gets no second message."""
    answers = await service.submit_many(
        ALICE,
        [
            SubmitRequest("noop", {"note": "low"}, idempotency_key="k"),
            SubmitRequest("noop", {"note": "high"}, priority=9),
            SubmitRequest("noop", {"note": "later"}, delay_seconds=600),
            SubmitRequest("noop", {"note": "low again"}, idempotency_key="k"),
        ],
    )
    jobs = [a for a in answers if isinstance(a, Job)]
    assert all(j.status is JobStatus.PENDING for j in jobs)
    for job in jobs:
        stored = await service.store.get(job.id)
        assert stored is not None and stored.enqueued_at is not None
    received: list[str] = []
    async with asyncio.timeout(20):
        while len(received) < 2:
            received += [d.job_id for d in await service.queue.receive(["noop"], 10, 1, 30)]
    if service.settings.sqs_endpoint_url is None:
        assert received == [jobs[1].id, jobs[0].id]
    assert sorted(received) == sorted([jobs[0].id, jobs[1].id])
    assert (await service.queue.depths(["noop"]))["noop"].delayed == 1


async def test_too_many_inputs_are_refused_as_a_whole(service: JobService) -> None:
    """More inputs than ``max_batch_size`` is one VALIDATION error on ``inputs``; nothing is stored."""
    limit = service.settings.max_batch_size
    with pytest.raises(ValidationError) as info:
        await service.submit_many(ALICE, [SubmitRequest("noop", {})] * (limit + 1))
    assert info.value.field == "inputs"
    assert await service.submit_many(ALICE, []) == []
    assert await service.count(ADMIN, JobFilter()) == 0


async def test_jobs_submitted_while_sqs_is_down_are_sent_by_the_sweeper(
    sqs_endpoint: str, distributed_settings: Callable[..., Settings]
) -> None:
    """Distributed: with SQS unreachable a batch is still stored and answered, its jobs unsent;
    once SQS is back the sweeper sends each of them, once (DESIGN §2)."""
    with TcpProxy(int(sqs_endpoint.rsplit(":", 1)[1])) as proxy:
        settings = distributed_settings(sqs_endpoint_url=proxy.url, sweep_grace_seconds=0)
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
            answers = await service.submit_many(ALICE, [SubmitRequest("noop", {"n": n}) for n in range(3)])
            jobs = [a for a in answers if isinstance(a, Job)]
            assert len(jobs) == 3
            for job in jobs:
                stored = await service.store.get(job.id)
                assert stored is not None and stored.enqueued_at is None
            proxy.restore()
            assert await service.sweep() == 3
            assert await service.sweep() == 0
            received: list[str] = []
            async with asyncio.timeout(20):
                while len(received) < 3:
                    received += [d.job_id for d in await service.queue.receive(["noop"], 10, 1, 30)]
            assert sorted(received) == sorted(j.id for j in jobs)
