"""How long one receive over many SQS types takes when one type is busy and the others are idle.

The SQS queue short-polls every type first and long-polls only when all are empty, so the busy
type's messages come back without waiting on the idle types' long polls. This was a timed
assertion in ``tests/core/backends/queue/test_sqs.py``; speed goals live here. Run it with
``.venv/bin/python -m bench.sqs_fairness`` (moto's SQS server, started here). Goal: under 1 s.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.procs import AWS_TEST_ENV, MotoServer
from core.backends.queue.sqs import SqsJobQueue
from core.models import Job, new_job_id
from core.settings import Settings

__all__ = ["busy_among_idle_seconds"]

GOAL_SECONDS = 1.0


async def busy_among_idle_seconds(endpoint: str, types: int = 8, messages: int = 20) -> tuple[float, int]:
    """Seconds one ``receive(10, wait 10 s)`` over ``types`` types took, and how many of the busy
    type's messages it brought (one type holds ``messages``, the others none)."""
    names = [f"t{i}" for i in range(types)]
    queue = await SqsJobQueue.open(Settings(sqs_endpoint_url=endpoint, sqs_queue_prefix="fair-"))
    try:
        await queue.ensure_queues(names)
        busy = names[types // 2]
        jobs = [Job(id=new_job_id(), type=busy, owner="bench", payload={}) for _ in range(messages)]
        await asyncio.gather(*(queue.send(job) for job in jobs))
        started = time.monotonic()
        deliveries = await queue.receive(names, 10, 10, 60)
        return time.monotonic() - started, sum(d.type == busy for d in deliveries)
    finally:
        await queue.close()


def main() -> None:
    os.environ.update(AWS_TEST_ENV)
    moto = MotoServer()
    moto.start()
    try:
        seconds, brought = asyncio.run(busy_among_idle_seconds(moto.endpoint))
    finally:
        moto.close()
    verdict = "yes" if seconds < GOAL_SECONDS else "no"
    print(f"one receive over 8 types, one busy: {seconds:.3f} s, {brought} of its messages")
    print(f"goal < {GOAL_SECONDS:g} s: {verdict}")


if __name__ == "__main__":
    main()
