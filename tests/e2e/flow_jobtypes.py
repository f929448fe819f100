"""A job type for the flow control end-to-end tests: it tells a local receiver when it enters and leaves."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import BaseModel

from core.jobtypes import JobContext, JobType
from core.models import JSONValue

__all__ = ["JOB_TYPES"]


class OverlapPayload(BaseModel):
    url: str
    tag: str
    seconds: float = 0.3
    block_first_attempt: bool = False  # the first attempt never ends (its worker is killed)


async def overlap_probe(ctx: JobContext, payload: OverlapPayload) -> JSONValue:
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(f"{payload.url}/enter", json={"tag": payload.tag, "attempt": ctx.attempt})
        try:
            if payload.block_first_attempt and ctx.attempt == 1:
                await asyncio.Event().wait()  # until the worker is killed
            await asyncio.sleep(payload.seconds)  # the work whose overlaps are measured
        finally:
            await client.post(f"{payload.url}/leave", json={"tag": payload.tag, "attempt": ctx.attempt})
    return {"tag": payload.tag}


JOB_TYPES = [
    JobType(
        "overlap_probe",
        "Reports its start and end to a local receiver.",
        OverlapPayload,
        overlap_probe,
        timeout_seconds=120,
        lease_seconds=3.0,
    ),
]
