"""``watch_external_jobs``: the queue messages of external job types, kept as their jobs' timers.

Jobs of an external type (``JobType.external``) are run by processes that are not jobpulse
workers: they find work through GraphQL and claim it with ``claimJob`` (``api/external.py``).
Workers never run them, but their messages still have a use. The sweeper loop (every API and
worker process) looks at them each round, and a message is settled by the job it names:

| the job                        | its message                                            |
| ------------------------------ | ------------------------------------------------------ |
| PENDING                        | hidden for a lease, then looked at again               |
| PROCESSING, lease live         | hidden until the lease ends                            |
| PROCESSING, lease ran out      | ``expire_claim`` first, then as the job now is         |
| COMPLETED, CANCELLED, or gone  | acknowledged                                           |
| FAILED                         | moved to the dead-letter queue, as a worker's would be |

(``expire_claim``: CANCELLED if a cancel was requested, FAILED on the last attempt, else PENDING.)
So an abandoned external claim makes its job claimable again about a lease later, an exhausted
external job lands in the dead-letter queue (``redriveDeadLetters`` works), and no message piles
up for a finished job, so ``stats`` counts what is really waiting. A message looked at many
times is replaced by a fresh one, so SQS's retention period and receive limit never take it.
"""

from __future__ import annotations

import structlog

from core.models import JobStatus
from core.ports import Delivery
from core.service import JobService, MessageFate
from workers.attempt import seconds_until

__all__ = ["MAX_HIDE_SECONDS", "RENEW_AFTER_RECEIVES", "settle_external", "watch_external_jobs"]

log = structlog.get_logger("jobpulse.external")

#: messages settled per round at most (the rest wait for the next round)
ROUND_LIMIT = 500
#: a message is looked at again after at most this long
MAX_HIDE_SECONDS = 3600.0
#: a message received this often is replaced: at most ~50 h old, far from SQS's 4 days and 1000 receives
RENEW_AFTER_RECEIVES = 50


async def watch_external_jobs(service: JobService, *, limit: int = ROUND_LIMIT) -> int:
    """Settle the visible messages of every external type (up to ``limit``); return how many."""
    types = [job_type.name for job_type in service.registry if job_type.external]
    settled = 0
    while types and settled < limit:
        lease = service.settings.visibility_timeout
        deliveries = await service.queue.receive(types, min(10, limit - settled), 0, lease)
        if not deliveries:
            break
        for delivery in deliveries:
            with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, type=delivery.type):
                await settle_external(service, delivery)
        settled += len(deliveries)
    return settled


async def settle_external(service: JobService, delivery: Delivery) -> None:
    """Act on one external job's message as the module docstring's table says."""
    queue = service.queue
    job = await service.expire_claim(delivery.job_id)  # writes only if the lease ran out
    if job is None or job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        await service.settle(delivery, MessageFate.ACK)
        return
    if job.status is JobStatus.FAILED:
        log.info("external job failed; message dead-lettered", error=job.error)
        await service.settle(delivery, MessageFate.DEAD_LETTER)
        return
    if job.status is JobStatus.PROCESSING:
        hide = seconds_until(service, job.lease_until) + 1  # just past the lease: whole seconds on SQS
    else:
        hide = service.settings.visibility_timeout
    hide = min(hide, MAX_HIDE_SECONDS)
    if delivery.receive_count >= RENEW_AFTER_RECEIVES:
        # The new message first: a crash in between leaves a harmless duplicate, never none.
        await queue.send(job, min(hide, queue.max_delay_seconds))
        await service.settle(delivery, MessageFate.ACK)
    else:
        await service.settle(delivery, MessageFate.RELEASE, hide)
