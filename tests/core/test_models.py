"""The state machine in ``core.models``: every allowed transition, and the refused ones."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.errors import InvalidStateError, LeaseLostError
from core.models import Claim, ClaimDecision, Job, JobStatus, new_job_id, utcnow


def make_job(**changes: object) -> Job:
    now = utcnow()
    base = Job(id=new_job_id(), type="noop", owner="alice", payload={}, created_at=now, updated_at=now)
    return Job(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})  # type: ignore[arg-type]


def running(job: Job | None = None, worker: str = "w1") -> tuple[Job, Claim]:
    job = (job or make_job()).claimed(worker, utcnow(), 30)
    return job, Claim(job.id, worker, job.attempts)


def test_claim_moves_pending_to_processing_and_counts_an_attempt() -> None:
    """Claiming a PENDING job makes it PROCESSING under a lease, attempts + 1, version + 1."""
    job = make_job()
    claimed = job.claimed("w1", utcnow(), 30)
    assert (claimed.status, claimed.attempts, claimed.version) == (JobStatus.PROCESSING, 1, 2)
    assert claimed.lease_owner == "w1" and claimed.lease_until is not None


def test_job_with_future_run_at_is_not_yet_claimable() -> None:
    """A delayed PENDING job tells the worker to wait, and refuses a claim."""
    job = make_job(run_at=utcnow() + timedelta(seconds=60))
    assert job.decide_claim(utcnow()) is ClaimDecision.NOT_YET
    with pytest.raises(InvalidStateError):
        job.claimed("w1", utcnow(), 30)


def test_live_lease_is_not_claimable() -> None:
    """A job running under a live lease is dropped, whatever the queue redelivers."""
    job, _ = running()
    assert job.decide_claim(utcnow()) is ClaimDecision.DROP


def test_expired_lease_is_claimable_again_as_a_new_attempt() -> None:
    """A dead worker's job is claimed again after its lease expires, counting a new attempt."""
    job, _ = running()
    later = utcnow() + timedelta(seconds=31)
    assert job.decide_claim(later) is ClaimDecision.RUN
    assert job.claimed("w2", later, 30).attempts == 2


def test_expired_lease_on_last_attempt_fails_the_job() -> None:
    """A worker lost on the last attempt leaves a job that must fail, not run again."""
    job, _ = running(make_job(max_attempts=1))
    assert job.decide_claim(utcnow() + timedelta(seconds=31)) is ClaimDecision.FAIL


def test_expired_lease_with_cancel_requested_is_cancelled() -> None:
    """A cancel requested while the worker died is honoured at the next delivery."""
    job, _ = running()
    job = job.cancel_requested_now(utcnow())
    assert job.decide_claim(utcnow() + timedelta(seconds=31)) is ClaimDecision.CANCEL


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_finished_jobs_are_dropped(status: JobStatus) -> None:
    """Messages for finished jobs are acknowledged and forgotten."""
    assert make_job(status=status).decide_claim(utcnow()) is ClaimDecision.DROP


def test_progress_never_goes_backwards_within_an_attempt() -> None:
    """A lower progress value keeps the higher one already reached."""
    job, claim = running()
    job = job.with_progress(claim, utcnow(), 60, "a")
    job = job.with_progress(claim, utcnow(), 40, "b")
    assert job.progress == 60 and job.progress_message == "b"


def test_progress_is_clamped_to_0_100() -> None:
    """Progress outside 0–100 is clamped."""
    job, claim = running()
    assert job.with_progress(claim, utcnow(), 250, None).progress == 100


def test_a_new_attempt_starts_progress_from_zero() -> None:
    """Progress belongs to an attempt: a retry starts again from 0."""
    job, claim = running(make_job(max_attempts=3))
    job = job.with_progress(claim, utcnow(), 80, None)
    job = job.retry_scheduled(claim, utcnow(), "boom", 0)
    assert job.claimed("w1", utcnow(), 30).progress == 0


def test_stale_claim_cannot_write() -> None:
    """A worker whose claim was superseded (new attempt) cannot complete the job."""
    job, old_claim = running()
    job = job.claimed("w2", utcnow() + timedelta(seconds=31), 30)
    with pytest.raises(LeaseLostError):
        job.completed(old_claim, utcnow(), {"late": True})


def test_complete_sets_result_and_full_progress() -> None:
    """Completion records the result, progress 100 and the completion time, and drops the lease."""
    job, claim = running()
    done = job.completed(claim, utcnow(), {"x": 1})
    assert (done.status, done.result, done.progress, done.lease_owner) == (
        JobStatus.COMPLETED,
        {"x": 1},
        100,
        None,
    )
    assert done.completed_at is not None


def test_retry_scheduled_returns_to_pending_with_run_at() -> None:
    """A failed attempt with attempts left goes back to PENDING until its backoff has passed."""
    job, claim = running()
    now = utcnow()
    retried = job.retry_scheduled(claim, now, "boom", 5)
    assert retried.status is JobStatus.PENDING and retried.run_at == now + timedelta(seconds=5)
    assert retried.error == "boom"


def test_release_gives_the_attempt_back() -> None:
    """A job released at shutdown is PENDING again without counting the interrupted attempt."""
    job, claim = running()
    assert job.released(claim, utcnow()).attempts == 0


def test_cancel_pending_is_final() -> None:
    """Cancelling a PENDING job makes it CANCELLED; cancelling again is an invalid state."""
    job = make_job().cancelled(utcnow())
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(InvalidStateError):
        job.cancelled(utcnow())


def test_cancel_request_needs_processing() -> None:
    """Only a PROCESSING job can have cancellation requested."""
    with pytest.raises(InvalidStateError):
        make_job().cancel_requested_now(utcnow())


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_resets_a_finished_job(status: JobStatus) -> None:
    """retryJob on a FAILED or CANCELLED job makes it PENDING with attempts reset and no result."""
    job = make_job(status=status, attempts=3, result={"x": 1}, progress=50.0, enqueued_at=utcnow())
    retried = job.retried(utcnow())
    assert (retried.status, retried.attempts, retried.result, retried.progress) == (
        JobStatus.PENDING,
        0,
        None,
        0,
    )
    assert retried.enqueued_at is None


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.COMPLETED])
def test_retry_refuses_unfinished_or_completed_jobs(status: JobStatus) -> None:
    """retryJob on anything but FAILED or CANCELLED is an invalid state."""
    with pytest.raises(InvalidStateError):
        make_job(status=status).retried(utcnow())


def test_failed_is_terminal() -> None:
    """A FAILED job cannot fail again."""
    job = make_job().failed(utcnow(), "x")
    with pytest.raises(InvalidStateError):
        job.failed(utcnow(), "y")


def test_new_job_ids_are_unique_uuid7() -> None:
    """Job ids are UUIDv7 strings (time-ordered layout) and never repeat."""
    ids = [new_job_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 36 and i[14] == "7" for i in ids)


def test_pending_job_with_cancel_requested_is_cancelled_at_claim() -> None:
    """A cancel requested during an attempt that then went back to PENDING wins at the next claim."""
    job, claim = running()
    job = job.cancel_requested_now(utcnow()).retry_scheduled(claim, utcnow(), "boom", 0)
    assert job.decide_claim(utcnow()) is ClaimDecision.CANCEL
