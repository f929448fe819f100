"""Job types for the flow control end-to-end tests: they tell a local receiver when they enter and leave.

Three types with one handler, so that one set of worker processes can hold three kinds of limit at
once: ``overlap_probe`` (a concurrency, set by the test), ``key_probe`` (one at a time per
``concurrencyKey``, declared) and ``rate_probe`` (starts a second, set by the test)."""

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
        name,
        "Reports its start and end to a local receiver.",
        OverlapPayload,
        overlap_probe,
        timeout_seconds=120,
        lease_seconds=3.0,
    )
    for name in ("overlap_probe", "key_probe", "rate_probe")
]
