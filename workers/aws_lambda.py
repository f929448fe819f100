"""``handler(event, context)``: the jobpulse worker runtime as an AWS Lambda function fed by SQS.

Give a function the handler ``workers.aws_lambda.handler`` and an SQS event source mapping with
``ReportBatchItemFailures`` on each job type's queue ``<prefix><type>`` (README, "Serverless
workers (AWS Lambda)"). The records of a batch run at once, each exactly as ``jobpulse worker``
runs a message it received (``Worker.process``): conditional claim, the handler under heartbeats
that extend the lease and the record's visibility (its receipt handle), progress and logs, the
outcome, events on the bus. What the runtime did with a record's message decides what Lambda hears:

| the runtime                                             | reported | then                            |
| ------------------------------------------------------- | -------- | ------------------------------- |
| deleted it (completed, cancelled, not needed, dropped)  | success  | Lambda's delete finds it gone   |
| moved it to the dead-letter queue (attempts exhausted)  | success  | as above                        |
| hid it until ``runAt`` (retry backoff, not yet due)     | failure  | SQS shows it again at ``runAt`` |
| hid it until the lease of the worker running it ends    | failure  | SQS shows it again then         |
| nothing (backend outage, lease lost, unexpected error)  | failure  | redelivered after its timeout   |
| malformed body: deleted, logged and counted here        | success  |                                 |

Records of an external type are settled as the sweeper settles them (``workers.external``), never
run; records from a queue that is not a job queue, or of a type this function does not know, are
reported as failures (and logged) so that no job is lost to a configuration mistake.

The backends, the service and the event loop are built once per execution environment and kept
across warm invocations (the Lambda idiom): that cache is ``_container``, below, and nothing else.
"""

from __future__ import annotations

import asyncio
import enum
import os
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from core.backends import open_backends
from core.errors import BackendUnavailableError, ConfigurationError
from core.gc_tuning import tune_gc
from core.logs import configure_logging
from core.models import Job, JobId
from core.ports import Delivery, JobQueue, QueueDepth, QueueRecords
from core.redact import settings_problem
from core.service import JobService
from core.settings import Settings
from core.stats_history import StatsRecorder
from core.stats_history import flush as flush_stats
from core.tracing import configure_tracing, tracing_listener
from workers.external import settle_external
from workers.registry import load_registry
from workers.runtime import Worker

__all__ = ["Container", "close", "container", "handler"]

log = structlog.get_logger("jobpulse.lambda")


class Outcome(enum.Enum):
    """What the runtime did with a record's message."""

    DONE = "done"  # deleted or dead-lettered: Lambda may delete it
    KEPT = "kept"  # hidden until later: SQS must keep it


class SettlingQueue:
    """The job queue, remembering what became of each receipt so the handler can tell Lambda."""

    def __init__(self, inner: JobQueue) -> None:
        self.inner = inner
        self.max_delay_seconds = inner.max_delay_seconds
        self.outcomes: dict[str, Outcome] = {}

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()

    async def ensure_queues(self, types: Sequence[str]) -> None:
        await self.inner.ensure_queues(types)

    async def send(self, job: Job, delay_seconds: float = 0.0) -> None:
        await self.inner.send(job, delay_seconds)

    async def receive(
        self, types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        return await self.inner.receive(types, max_messages, wait_seconds, visibility_seconds)

    async def ack(self, delivery: Delivery) -> None:
        await self.inner.ack(delivery)
        self.outcomes[delivery.receipt] = Outcome.DONE

    async def release(self, delivery: Delivery, delay_seconds: float) -> None:
        await self.inner.release(delivery, delay_seconds)
        self.outcomes[delivery.receipt] = Outcome.KEPT

    async def extend(self, delivery: Delivery, visibility_seconds: float) -> None:
        await self.inner.extend(delivery, visibility_seconds)

    async def dead_letter(self, delivery: Delivery) -> None:
        await self.inner.dead_letter(delivery)
        self.outcomes[delivery.receipt] = Outcome.DONE

    async def redrive_dead_letters(self, type: str) -> list[JobId]:
        return await self.inner.redrive_dead_letters(type)

    async def depths(self, types: Sequence[str]) -> dict[str, QueueDepth]:
        return await self.inner.depths(types)


@dataclass
class Container:
    """What one execution environment builds on its first invocation and keeps for the next ones."""

    loop: asyncio.AbstractEventLoop
    stack: AsyncExitStack
    records: QueueRecords
    queue: SettlingQueue
    service: JobService
    worker: Worker
    #: this container's per-minute counts (``statsHistory``), stored at the end of each invocation
    stats: StatsRecorder = field(default_factory=StatsRecorder)
    invocations: int = field(default=0)

    @property
    def malformed_count(self) -> int:
        """Records dropped because their body was not a jobpulse message."""
        return self.records.malformed_count


#: the per-environment cache: built by the first invocation, reused by every warm one
_container: Container | None = None


def container() -> Container:
    """This execution environment's backends, service and event loop (built on first use)."""
    global _container
    if _container is None:
        try:
            settings = Settings()
        except ValidationError as exc:  # one line in the invocation error, no pydantic wall
            raise ConfigurationError(f"invalid configuration: {settings_problem(exc)}") from None
        _container = _build(settings)
    return _container


def close() -> None:
    """Close the cached backends and loop (for tests; Lambda simply freezes the environment)."""
    global _container
    built, _container = _container, None
    if built is not None:
        built.loop.run_until_complete(built.stack.aclose())
        built.loop.close()


def _build(settings: Settings) -> Container:
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        configure_logging(settings.log_level, settings.log_format)  # JSON lines, to CloudWatch
    if settings.sqs_endpoint_url is None or settings.mongodb_url is None:
        raise ConfigurationError(
            "the Lambda handler needs SQS and a shared store:"
            " set JOBPULSE_SQS_ENDPOINT_URL and JOBPULSE_MONGODB_URL"
        )
    registry = load_registry(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stack = AsyncExitStack()
    backends = loop.run_until_complete(stack.enter_async_context(open_backends(settings)))
    assert backends.records is not None  # JOBPULSE_SQS_ENDPOINT_URL is set: the SQS queue
    queue = SettlingQueue(backends.queue)
    service = JobService(
        backends.store,
        queue,
        backends.bus,
        registry,
        settings,
        blobs=backends.blobs,
        transaction=backends.transaction,
    )
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    worker = Worker(service, worker_id=f"lambda:{name}:{secrets.token_hex(3)}")
    if configure_tracing() and (spans := tracing_listener()) is not None:
        service.listeners.append(spans)  # one trace per job (core/tracing.py)
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        tune_gc()  # a warm container lives on: freeze what was built, fewer GC pauses (core/gc_tuning.py)
    log.info("lambda container ready", backends=backends.kinds, types=worker.types)
    built = Container(loop, stack, backends.records, queue, service, worker)
    service.listeners.append(built.stats.on_event)
    return built


def handler(event: Mapping[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point: run the batch; report the records SQS must keep as batch item failures."""
    built = container()
    built.invocations += 1
    records = event.get("Records") or []
    failed = built.loop.run_until_complete(_run_batch(built, records))
    # The container may be frozen, or never called again, once this returns: its counts go now (a
    # failed flush keeps them for the next invocation). The queue depths are sampled by the API.
    built.loop.run_until_complete(flush_stats(built.service, built.stats, sample_depths=False))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


async def _delivery(built: Container, record: Mapping[str, Any]) -> Delivery | None:
    queue_name = str(record["eventSourceARN"]).rsplit(":", 1)[-1]
    receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    return await built.records.delivery_from(
        queue_name, str(record["body"]), str(record["receiptHandle"]), receive_count
    )


async def _run_batch(built: Container, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Run the records; the message ids of those whose messages SQS must keep."""
    registry = built.service.registry
    failed: list[str] = []
    taken: dict[str, Delivery] = {}
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            delivery = await _delivery(built, record)
        except (ConfigurationError, BackendUnavailableError, KeyError, TypeError, ValueError) as exc:
            log.error("record not run; SQS keeps it", message_id=message_id, error=repr(exc))
            failed.append(message_id)
            continue
        if delivery is None:
            continue  # malformed: deleted and counted by the queue
        if delivery.type not in registry:
            log.error("record of a job type this function does not know; SQS keeps it", type=delivery.type)
            failed.append(message_id)
            continue
        taken[message_id] = delivery
    runnable = [d for d in taken.values() if not registry.get(d.type).external]
    external = [d for d in taken.values() if registry.get(d.type).external]
    if runnable:
        await built.worker.process(runnable)
    for delivery in external:
        await _settle_external(built.service, delivery)
    for message_id, delivery in taken.items():
        if built.queue.outcomes.pop(delivery.receipt, None) is not Outcome.DONE:
            failed.append(message_id)
    return failed


async def _settle_external(service: JobService, delivery: Delivery) -> None:
    with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, type=delivery.type):
        try:
            await settle_external(service, delivery)
        except Exception:
            log.exception("external job's message not settled; SQS keeps it")
