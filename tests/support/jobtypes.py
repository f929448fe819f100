"""Job types for tests, loaded into servers with ``JOBPULSE_JOB_MODULES=tests.support.jobtypes``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel, Field

from core.jobtypes import JobContext, JobType, PermanentError, Retry
from core.models import JSONValue

__all__ = ["JOB_TYPES"]


class NoopPayload(BaseModel):
    """Anything at all."""

    note: str | None = None


async def noop(ctx: JobContext, payload: NoopPayload) -> JSONValue:
    return {"ok": True, "note": payload.note}


async def collect(ctx: JobContext, payload: NoopPayload) -> JSONValue:
    """Answers its dependencies' results (workflows)."""
    return {"inputs": await ctx.dependency_results()}


class SleepPayload(BaseModel):
    seconds: float = Field(ge=0, le=3600)
    steps: int = Field(default=1, ge=1, le=1000)
    #: appended with "start <attempt>" and "done <attempt>" lines, to count runs across processes
    journal: str | None = None


async def sleep(ctx: JobContext, payload: SleepPayload) -> JSONValue:
    journal = Path(payload.journal) if payload.journal else None
    if journal:
        with journal.open("a") as f:
            f.write(f"start {ctx.attempt} {os.getpid()}\n")
    await ctx.log(f"sleeping {payload.seconds}s in {payload.steps} steps")
    for step in range(1, payload.steps + 1):
        await asyncio.sleep(payload.seconds / payload.steps)
        await ctx.progress(100 * step / payload.steps, f"step {step} of {payload.steps}")
    if journal:
        with journal.open("a") as f:
            f.write(f"done {ctx.attempt} {os.getpid()}\n")
    return {"slept": payload.seconds, "attempt": ctx.attempt}


class FlakyPayload(BaseModel):
    fail_times: int = Field(ge=0)
    retry_delay: float | None = None


async def flaky(ctx: JobContext, payload: FlakyPayload) -> JSONValue:
    if ctx.attempt <= payload.fail_times:
        if payload.retry_delay is not None:
            raise Retry(f"failing on purpose ({ctx.attempt})", delay=payload.retry_delay)
        raise RuntimeError(f"failing on purpose ({ctx.attempt})")
    return {"attempt": ctx.attempt}


class FailPayload(BaseModel):
    permanent: bool = False
    message: str = "always fails"


async def fail(ctx: JobContext, payload: FailPayload) -> JSONValue:
    if payload.permanent:
        raise PermanentError(payload.message)
    raise RuntimeError(payload.message)


class GatePayload(BaseModel):
    #: the job fails until this file exists
    path: str


async def gate(ctx: JobContext, payload: GatePayload) -> JSONValue:
    if not Path(payload.path).exists():
        raise RuntimeError(f"{payload.path} does not exist yet")
    return {"opened": True}


JOB_TYPES = [
    JobType("noop", "Does nothing and succeeds.", NoopPayload, noop, max_attempts=3, timeout_seconds=30),
    JobType(
        "sleep",
        "Sleeps, reporting progress at each step.",
        SleepPayload,
        sleep,
        max_attempts=3,
        timeout_seconds=600,
    ),
    JobType(
        "flaky",
        "Fails its first `fail_times` attempts, then succeeds.",
        FlakyPayload,
        flaky,
        max_attempts=5,
        timeout_seconds=30,
    ),
    JobType("collect", "Answers its dependencies' results.", NoopPayload, collect),
    JobType("fail", "Always fails.", FailPayload, fail, max_attempts=2, timeout_seconds=30),
    JobType("gate", "Fails until a file exists.", GatePayload, gate, max_attempts=1, timeout_seconds=30),
]
