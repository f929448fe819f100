"""What a handler's ``JobContext`` writes: progress (coalesced, never backwards) and logs."""

from __future__ import annotations

import structlog

from core.models import JobEventKind, JobStatus
from core.service import JobService
from tests.workers.conftest import EMBEDDED_ONLY, drain, events, reload, submit
from workers.context import MAX_LOG_CHARS


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
async def test_progress_in_a_tight_loop_is_coalesced(service: JobService) -> None:
    """Ten thousand progress reports become a handful of writes, the last value flushed before completion."""
    job = await submit(service, "hammer", {"times": 10_000})
    await drain(service)
    history = await events(service, job)
    progress = [e for e in history if e.kind is JobEventKind.PROGRESS]
    assert 1 <= len(progress) <= 5
    assert progress[-1].job.progress == 100
    assert [e.kind for e in history][-2:] == [JobEventKind.PROGRESS, JobEventKind.COMPLETED]


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
