"""``JobService`` on the embedded backends: submission, reads, cancel, retry, the write path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.backends import open_backends
from core.errors import (
    InvalidStateError,
    JobNotFoundError,
    PayloadTooLargeError,
    UnknownJobTypeError,
    ValidationError,
)
from core.jobtypes import JobTypeRegistry
from core.models import ClaimDecision, JobEventKind, JobStatus, Principal
from core.ports import JobFilter
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES

ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", "admin")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[JobService]:
    settings = Settings(data_dir=tmp_path, max_payload_bytes=1024, sweep_grace_seconds=0)
    async with open_backends(settings) as backends:
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            JobTypeRegistry(JOB_TYPES),
            settings,
            transaction=backends.transaction,
        )


async def test_submit_stores_and_enqueues_in_one_step(service: JobService) -> None:
    """A submitted job is PENDING, has a CREATED event, and its message is already queued."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    assert job.status is JobStatus.PENDING and job.version == 1 and job.owner == "alice"
    assert job.enqueued_at is not None
    events = await service.store.list_events(after=None, limit=10, job_id=job.id)
    assert [e.kind for e in events] == [JobEventKind.CREATED]
    deliveries = await service.queue.receive(["noop"], 10, 0, 30)
    assert [d.job_id for d in deliveries] == [job.id]


async def test_submit_uses_the_job_types_defaults(service: JobService) -> None:
    """maxAttempts and timeoutSeconds default to the job type's."""
    job = await service.submit(ALICE, SubmitRequest("flaky", {"fail_times": 1}))
    assert (job.max_attempts, job.timeout_seconds) == (5, 30)


async def test_unknown_type_is_refused(service: JobService) -> None:
    """A job type nobody handles is UNKNOWN_JOB_TYPE, naming the field."""
    with pytest.raises(UnknownJobTypeError) as info:
        await service.submit(ALICE, SubmitRequest("nope", {}))
    assert info.value.field == "type"


async def test_payload_is_validated_against_the_model(service: JobService) -> None:
    """A payload that does not fit the job type's model is VALIDATION with the offending field."""
    with pytest.raises(ValidationError) as info:
        await service.submit(ALICE, SubmitRequest("sleep", {"seconds": "soon"}))
    assert info.value.field == "payload.seconds"


async def test_payload_must_be_an_object(service: JobService) -> None:
    """A payload that is not a JSON object is refused."""
    with pytest.raises(ValidationError):
        await service.submit(ALICE, SubmitRequest("noop", [1, 2]))


async def test_oversized_payload_is_refused(service: JobService) -> None:
    """A payload over the configured limit is PAYLOAD_TOO_LARGE and nothing is stored."""
    with pytest.raises(PayloadTooLargeError):
        await service.submit(ALICE, SubmitRequest("noop", {"note": "x" * 2000}))
    assert await service.count(ADMIN, JobFilter()) == 0


@pytest.mark.parametrize(
    ("field", "request_"),
    [
        ("priority", SubmitRequest("noop", {}, priority=10**6)),
        ("delaySeconds", SubmitRequest("noop", {}, delay_seconds=-1)),
        ("maxAttempts", SubmitRequest("noop", {}, max_attempts=0)),
        ("timeoutSeconds", SubmitRequest("noop", {}, timeout_seconds=0)),
        ("idempotencyKey", SubmitRequest("noop", {}, idempotency_key="")),
    ],
)
async def test_out_of_range_options_name_their_field(
    service: JobService, field: str, request_: SubmitRequest
) -> None:
    """Each out-of-range option is a VALIDATION error naming that option."""
    with pytest.raises(ValidationError) as info:
        await service.submit(ALICE, request_)
    assert info.value.field == field


async def test_idempotency_key_returns_the_first_job(service: JobService) -> None:
    """The same owner and key return the first job instead of creating another."""
    first = await service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="k1"))
    again = await service.submit(ALICE, SubmitRequest("noop", {"note": "other"}, idempotency_key="k1"))
    assert again.id == first.id
    assert await service.count(ADMIN, JobFilter()) == 1


async def test_idempotency_keys_are_per_owner(service: JobService) -> None:
    """Another owner's identical key makes a job of its own."""
    first = await service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="k1"))
    other = await service.submit(BOB, SubmitRequest("noop", {}, idempotency_key="k1"))
    assert other.id != first.id


async def test_concurrent_submits_with_one_key_make_one_job(service: JobService) -> None:
    """Racing submissions with the same key yield a single job."""
    jobs = await asyncio.gather(
        *(service.submit(ALICE, SubmitRequest("noop", {}, idempotency_key="race")) for _ in range(10))
    )
    assert len({j.id for j in jobs}) == 1


async def test_submit_many_keeps_order_and_creates_the_valid_ones(service: JobService) -> None:
    """Each input stands alone: valid ones are created, invalid ones answered with their error, in order."""
    results = await service.submit_many(
        ALICE, [SubmitRequest("noop", {}), SubmitRequest("nope", {}), SubmitRequest("noop", {"note": "b"})]
    )
    assert [type(r).__name__ for r in results] == ["Job", "UnknownJobTypeError", "Job"]
    assert await service.count(ADMIN, JobFilter()) == 2


async def test_users_see_only_their_own_jobs(service: JobService) -> None:
    """Another user's job reads as missing; an admin sees it."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    assert await service.get(BOB, job.id) is None
    assert await service.get(ADMIN, job.id) is not None
    page = await service.list(BOB, JobFilter(owner="alice"), 10, None)
    assert page.jobs == []


async def test_another_users_job_cannot_be_cancelled(service: JobService) -> None:
    """Cancelling another user's job is NOT_FOUND, exactly like a missing job."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    with pytest.raises(JobNotFoundError):
        await service.cancel(BOB, job.id)


async def test_list_is_newest_first_and_pages_without_overlap(service: JobService) -> None:
    """Pages walk the listing newest first with no job twice and none missed."""
    ids = [(await service.submit(ALICE, SubmitRequest("noop", {}))).id for _ in range(5)]
    seen: list[str] = []
    after = None
    from core.cursors import JobCursor, to_micros

    while True:
        page = await service.list(ALICE, JobFilter(), 2, after)
        seen += [j.id for j in page.jobs]
        if not page.has_next_page:
            break
        last = page.jobs[-1]
        after = JobCursor(to_micros(last.created_at), last.id).encode()
    assert seen == list(reversed(ids))


async def test_cancel_pending_makes_it_never_run(service: JobService) -> None:
    """A cancelled PENDING job is CANCELLED and its message is dropped when delivered."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    cancelled = await service.cancel(ALICE, job.id)
    assert cancelled.status is JobStatus.CANCELLED
    result = await service.claim(job.id, "w1", 30)
    assert result.decision is ClaimDecision.DROP


async def test_cancel_processing_requests_it_and_signals_the_worker(service: JobService) -> None:
    """Cancelling a running job sets the flag and publishes a control message."""
    from core.ports import CONTROL, CancelRequested

    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    await service.claim(job.id, "w1", 30)
    async with service.bus.subscribe([CONTROL]) as control:
        requested = await service.cancel(ALICE, job.id)
        message = await anext(aiter(control))
    assert requested.status is JobStatus.PROCESSING and requested.cancel_requested
    assert message == CancelRequested(job.id)


async def test_cancel_finished_job_is_invalid_state(service: JobService) -> None:
    """cancelJob on a finished job is INVALID_STATE."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    claim = (await service.claim(job.id, "w1", 30)).claim
    assert claim is not None
    await service.complete(claim, {})
    with pytest.raises(InvalidStateError):
        await service.cancel(ALICE, job.id)


async def test_retry_failed_job_requeues_it(service: JobService) -> None:
    """retryJob on a FAILED job makes it PENDING, attempts reset, with a message queued again."""
    job = await service.submit(ALICE, SubmitRequest("fail", {}, max_attempts=1))
    delivery = (await service.queue.receive(["fail"], 1, 0, 30))[0]
    claim = (await service.claim(job.id, "w1", 30)).claim
    assert claim is not None
    failed = await service.fail_attempt(claim, "boom")
    assert failed.status is JobStatus.FAILED
    await service.queue.ack(delivery)
    retried = await service.retry(ALICE, job.id)
    assert (retried.status, retried.attempts, retried.enqueued_at is not None) == (JobStatus.PENDING, 0, True)
    assert [d.job_id for d in await service.queue.receive(["fail"], 1, 0, 30)] == [job.id]


async def test_retry_unfinished_job_is_invalid_state(service: JobService) -> None:
    """retryJob on a PENDING job is INVALID_STATE."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    with pytest.raises(InvalidStateError):
        await service.retry(ALICE, job.id)


async def test_failed_attempt_with_attempts_left_backs_off(service: JobService) -> None:
    """A failing attempt with attempts left is PENDING again with runAt in the future and RETRYING."""
    job = await service.submit(ALICE, SubmitRequest("flaky", {"fail_times": 1}))
    claim = (await service.claim(job.id, "w1", 30)).claim
    assert claim is not None
    retrying = await service.fail_attempt(claim, "boom", retry_delay=60)
    assert retrying.status is JobStatus.PENDING and retrying.run_at is not None
    assert (await service.claim(job.id, "w1", 30)).decision is ClaimDecision.NOT_YET
    events = await service.store.list_events(after=None, limit=10, job_id=job.id)
    assert events[-1].kind is JobEventKind.RETRYING


async def test_non_retryable_failure_fails_at_once(service: JobService) -> None:
    """A non-retryable failure is FAILED even with attempts left."""
    job = await service.submit(ALICE, SubmitRequest("flaky", {"fail_times": 1}))
    claim = (await service.claim(job.id, "w1", 30)).claim
    assert claim is not None
    assert (await service.fail_attempt(claim, "bad input", retryable=False)).status is JobStatus.FAILED


async def test_concurrent_writers_exactly_one_wins_per_version(service: JobService) -> None:
    """Many concurrent writes on one job all land, one at a time, with consecutive versions."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    claim = (await service.claim(job.id, "w1", 30)).claim
    assert claim is not None
    from core.models import LogLevel

    await asyncio.gather(*(service.log(claim, LogLevel.INFO, f"line {i}") for i in range(20)))
    events = await service.store.list_events(after=None, limit=100, job_id=job.id)
    assert [e.version for e in events] == list(range(1, 23))
    assert len(await service.store.list_logs(job.id, 100)) == 20


async def test_two_workers_claiming_one_job_only_one_runs(service: JobService) -> None:
    """Two concurrent claims of one job: exactly one gets to run it."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    results = await asyncio.gather(service.claim(job.id, "w1", 30), service.claim(job.id, "w2", 30))
    assert sorted(r.decision.value for r in results) == ["drop", "run"]


async def test_sweeper_sends_jobs_whose_send_failed(service: JobService) -> None:
    """A PENDING job never enqueued is found by the sweeper and queued."""
    from dataclasses import replace

    from core.models import JobEvent, new_job_id

    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    orphan = replace(job, id=new_job_id(), enqueued_at=None)
    # Insert through the store with no transactional queue, as the distributed mode would.
    from core.backends.store.sqlite import SqliteJobStore

    assert isinstance(service.store, SqliteJobStore)
    plain = SqliteJobStore(service.store.db)
    await plain.insert(orphan, JobEvent.of(orphan, JobEventKind.CREATED), orphan.created_at)
    assert await service.sweep() == 1
    assert await service.sweep() == 0
    received = {d.job_id for d in await service.queue.receive(["noop"], 10, 0, 30)}
    assert orphan.id in received


async def test_backoff_grows_exponentially_with_jitter(service: JobService) -> None:
    """Backoff doubles per attempt, jittered between half and the full value."""
    base = service.settings.backoff_base_seconds
    for attempt in (1, 2, 3):
        delay = service.backoff_seconds(attempt)
        assert base * 2 ** (attempt - 1) / 2 <= delay <= base * 2 ** (attempt - 1)
