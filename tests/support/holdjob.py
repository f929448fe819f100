"""A ``hold`` job type for end-to-end tests: it runs until a file exists, so a test decides when it ends.

Load it with ``JOBPULSE_JOB_MODULES=tests.support.holdjob`` (next to ``tests.support.jobtypes``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

from core.jobtypes import JobContext, JobType
from core.models import JSONValue

__all__ = ["JOB_TYPES"]

POLL_SECONDS = 0.05


class HoldPayload(BaseModel):
    #: the handler returns once this file exists
    until: str
    #: appended with "start <attempt> <pid>" and "done <attempt> <pid>", to count runs across processes
    journal: str


async def hold(ctx: JobContext, payload: HoldPayload) -> JSONValue:
    journal = Path(payload.journal)
    with journal.open("a") as f:
        f.write(f"start {ctx.attempt} {os.getpid()}\n")
    while True:  # a file another process creates: nothing to await but the next look
        if Path(payload.until).exists():
            break
        await asyncio.sleep(POLL_SECONDS)
    with journal.open("a") as f:
        f.write(f"done {ctx.attempt} {os.getpid()}\n")
    return {"attempt": ctx.attempt}


JOB_TYPES = [
    JobType("hold", "Runs until a file exists.", HoldPayload, hold, max_attempts=3, timeout_seconds=600),
]
