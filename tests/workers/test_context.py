"""What a handler's ``JobContext`` writes: progress (coalesced, never backwards) and logs."""

from __future__ import annotations

import pytest
import structlog

from core.models import Job, JobEventKind, JobStatus
from core.service import JobService
from tests.workers.conftest import EMBEDDED_ONLY, drain, events, reload, submit
from workers.context import MAX_LOG_CHARS, WorkerContext


@pytest.fixture
def plain_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress as written before fast jobs were coalesced: a first report at once, the last flushed."""
    monkeypatch.setattr(WorkerContext, "coalesce_start", False)


def _final(job: Job) -> tuple[object, ...]:
    return (job.status, job.progress, job.progress_message, job.result, job.attempts)


async def _run_progress(service: JobService, steps: list[float]) -> tuple[Job, list[JobEventKind], list[int]]:
    job = await submit(service, "progress", {"steps": steps})
    await drain(service)
    history = await events(service, job)
    return await reload(service, job), [e.kind for e in history], [e.version for e in history]


@pytest.mark.usefixtures("plain_progress")
async def test_progress_never_goes_backwards(service: JobService) -> None:
    """Progress reports that go down are recorded as the highest value reached so far."""
    job = await submit(service, "progress", {"steps": [10, 50, 30, 80, 20]})
    await drain(service)
    recorded = [e.job.progress for e in await events(service, job) if e.kind is JobEventKind.PROGRESS]
    assert recorded, "some progress was written"
    assert recorded == sorted(recorded)
    assert max(recorded) == 80
    assert (await reload(service, job)).progress == 100


@EMBEDDED_ONLY  # how many writes coalesce depends on the store's latency: flaky on a loaded moto/SecantusDB
@pytest.mark.usefixtures("plain_progress")
async def test_progress_in_a_tight_loop_is_coalesced(service: JobService) -> None:
    """Ten thousand progress reports become a handful of writes, the last value flushed before completion."""
    job = await submit(service, "hammer", {"times": 10_000})
    await drain(service)
    history = await events(service, job)
    progress = [e for e in history if e.kind is JobEventKind.PROGRESS]
    assert 1 <= len(progress) <= 5
    assert progress[-1].job.progress == 100
    assert [e.kind for e in history][-2:] == [JobEventKind.PROGRESS, JobEventKind.COMPLETED]


async def test_a_fast_job_completes_as_on_the_plain_path_without_its_progress_writes(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job done within ``PROGRESS_INTERVAL`` ends as on the plain path, its last message carried by
    the completion, with no PROGRESS write and consecutive versions."""
    steps = [10, 50, 30, 80, 20]
    coalesced, coalesced_kinds, coalesced_versions = await _run_progress(service, steps)
    monkeypatch.setattr(WorkerContext, "coalesce_start", False)
    plain, plain_kinds, plain_versions = await _run_progress(service, steps)
    assert _final(coalesced) == _final(plain) == (JobStatus.COMPLETED, 100, "at 20.0", {"reported": 5}, 1)
    assert coalesced_kinds == [JobEventKind.CREATED, JobEventKind.STARTED, JobEventKind.COMPLETED]
    assert JobEventKind.PROGRESS in plain_kinds
    assert [k for k in plain_kinds if k is not JobEventKind.PROGRESS] == coalesced_kinds
    for versions in (coalesced_versions, plain_versions):
        assert versions == list(range(1, len(versions) + 1))


async def test_a_job_running_longer_than_the_interval_shows_progress_while_it_runs(
    service: JobService,
) -> None:
    """A job that runs past ``PROGRESS_INTERVAL`` writes progress before its completion, never backwards."""
    job = await submit(service, "sleep", {"seconds": 0.5, "steps": 5})
    await drain(service)
    history = await events(service, job)
    progress = [e for e in history if e.kind is JobEventKind.PROGRESS]
    assert progress, [e.kind for e in history]
    assert all(e.job.status is JobStatus.PROCESSING for e in progress)
    assert [e.job.progress for e in progress] == sorted(e.job.progress for e in progress)
    assert history[-1].kind is JobEventKind.COMPLETED
    assert (history[-1].job.progress, history[-1].job.progress_message) == (100, "step 5 of 5")


async def test_a_fast_job_that_fails_shows_how_far_it_got(service: JobService) -> None:
    """A job that reports progress and fails within ``PROGRESS_INTERVAL`` ends FAILED at its last report."""
    job = await submit(service, "progress", {"steps": [10, 40], "fail_with": "broke at 40"})
    await drain(service)
    failed = await reload(service, job)
    assert (failed.status, failed.error) == (JobStatus.FAILED, "broke at 40")
    assert (failed.progress, failed.progress_message) == (40, "at 40.0")


async def test_long_log_lines_are_cut(service: JobService) -> None:
    """A log line longer than ``MAX_LOG_CHARS`` is stored cut, saying how much was left out."""
    job = await submit(service, "chatty", {})
    await drain(service)
    [line] = [e for e in await events(service, job) if e.kind is JobEventKind.LOG]
    assert line.message is not None
    assert line.message.startswith("x" * MAX_LOG_CHARS)
    assert line.message.endswith(f"({50_000 - MAX_LOG_CHARS} more characters)")
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_job_log_lines_carry_the_job_context(service: JobService) -> None:
    """Every worker log line about a job names its job id, type, attempt and worker id."""
    job = await submit(service, "noop", {})
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        await drain(service, worker_id="w-1")
    about_job = [line for line in captured if line.get("job_id") == job.id]
    assert {line["event"] for line in about_job} >= {"job started", "job completed"}
    for line in about_job:
        assert (line["type"], line["attempt"], line["worker_id"]) == ("noop", 1, "w-1")
