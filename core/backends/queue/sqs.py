"""``SqsJobQueue``: one SQS queue per job type, each with a dead-letter queue (the distributed queue).

Queues are ``<prefix><type>``, its high-priority lane ``<prefix><type>-high`` and one
``<prefix><type>-dlq`` for both; the two lanes have a redrive policy to the DLQ with a high
``maxReceiveCount``: jobpulse moves exhausted jobs itself (``dead_letter``), the policy is only a
backstop for poison messages. A message body is ``{"job_id", "type"}``
and nothing else: the store holds the job. Bodies that are not that (not JSON, no ``job_id``,
another queue's type) are deleted, logged and counted in ``malformed_count``, never returned.

Priority: a job with ``priority > 0`` is sent to its type's high lane, every other job to the
main one, and every receive drains the high lanes first: two levels, exactly. Within a lane a
standard queue keeps no order (roughly the order of sending). A redriven or released job goes back
to the lane of its priority (a release re-sends to the queue it came from).

Receiving: high lanes first, fair across types (``core.backends.queue.sqs_lanes``).

Sends and deletes are coalesced per queue like a group commit (``GroupCommit``): one made while
another to the same queue is in flight waits for the next ``SendMessageBatch`` or
``DeleteMessageBatch``, up to ten together. Idle, each goes out at once; each caller learns its
own message's fate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import orjson
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from core.backends.codec import dumps
from core.backends.queue.sqs_age import SqsQueueAges, cloudwatch_endpoint
from core.backends.queue.sqs_deletes import BatchDeleter, is_gone
from core.backends.queue.sqs_lanes import CALL_READ_SECONDS, Lane, LaneReceiver
from core.backends.queue.sqs_lanes import whole_seconds as _seconds
from core.errors import BackendUnavailableError, ConfigurationError
from core.group_commit import GroupCommit
from core.models import Job, JobId
from core.ports import Delivery, QueueDepth
from core.settings import Settings

__all__ = ["DLQ_SUFFIX", "HIGH_SUFFIX", "Lane", "SqsJobQueue", "queue_names"]

log = structlog.get_logger("jobpulse.sqs")

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
MAX_VISIBILITY_SECONDS = 43_200 - 60  # 12 h (SQS's limit) minus a margin for clock skew
MAX_LONG_POLL_SECONDS = 20
# Every call but a long poll answers in milliseconds: a stuck SQS must not hold a submission (or
# an acknowledgement) for long. Long polls get a client of their own, with a read timeout to match.
CALL_CONNECT_SECONDS = 2
REDRIVE_CONFIRM_SECONDS = 1  # one long poll proves a DLQ empty (short polls sample few servers)
DLQ_SUFFIX = "-dlq"
HIGH_SUFFIX = "-high"  # the high-priority lane of a type (jobs with priority > 0)
MAX_RECEIVE_COUNT = 1000
#: how long SQS keeps a message (and a dead letter): 14 days, the most SQS allows (its default is 4)
RETENTION_SECONDS = 14 * 24 * 3600
SEND_BATCH = 10  # SQS's limit per SendMessageBatch
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def queue_names(prefix: str, type: str) -> list[str]:
    """A type's queues: its main lane, its high-priority lane and their dead-letter queue."""
    return [f"{prefix}{type}", f"{prefix}{type}{HIGH_SUFFIX}", f"{prefix}{type}{DLQ_SUFFIX}"]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Driver errors become ``BackendUnavailableError`` at this boundary."""
    try:
        yield
    except ClientError as exc:
        raise BackendUnavailableError(f"SQS {what} failed: {_code(exc)}: {exc}") from exc
    except (BotoCoreError, OSError, TimeoutError) as exc:
        raise BackendUnavailableError(f"SQS {what} failed: {exc}") from exc


def _split(receipt: str) -> tuple[str, str]:
    url, _, handle = receipt.partition("|")
    return url, handle


def _body(job_id: JobId, type: str) -> str:
    return dumps({"job_id": job_id, "type": type}).decode()


class SqsJobQueue(LaneReceiver):
    """Job messages in SQS; see the module docstring for the layout, receiving and priority."""

    max_delay_seconds = float(MAX_DELAY_SECONDS)

    def __init__(
        self,
        client: Any,
        settings: Settings,
        stack: AsyncExitStack,
        ages: SqsQueueAges | None = None,
        poller: Any = None,
    ) -> None:
        self._client = client
        self._poller = poller if poller is not None else client  # for long polls
        self._ages = ages
        self._stack = stack
        self.prefix = settings.sqs_queue_prefix
        self.create_queues = settings.sqs_create_queues
        self._urls: dict[str, str] = {}  # queue name → URL
        self._ensuring: dict[str, asyncio.Lock] = {}
        self._deletes = BatchDeleter(client)
        # Sends to one queue made while one is in flight go out together (see _send_batch).
        self._sends: GroupCommit[str, tuple[str, int], None] = GroupCommit(self._send_batch, SEND_BATCH)
        self._rotation = 0
        # Multi-type receives: long polls still running, and messages received but not handed out.
        self._in_flight: dict[Lane, asyncio.Task[list[Delivery]]] = {}
        self._ready: dict[Lane, list[Delivery]] = {}
        #: messages dropped because their body was not a jobpulse message
        self.malformed_count = 0

    @property
    def client(self) -> Any:
        """The SQS client calls other than long polls go through (for tests that watch them)."""
        return self._client

    @classmethod
    async def open(cls, settings: Settings) -> SqsJobQueue:
        """Create the clients (no request is made: SQS may come up later; ``ping`` tells)."""
        # One retry: readiness must fail fast. (botocore's "max_attempts" would not count the first.)
        retries = {"total_max_attempts": 2, "mode": "standard"}
        calls = AioConfig(
            connect_timeout=CALL_CONNECT_SECONDS, read_timeout=CALL_READ_SECONDS, retries=retries
        )
        # Longer than a long poll: the answer to one comes when it ends.
        polls = AioConfig(connect_timeout=5, read_timeout=MAX_LONG_POLL_SECONDS + 10, retries=retries)
        stack = AsyncExitStack()
        with _unavailable("client creation"):
            client, poller = [
                await stack.enter_async_context(
                    get_session().create_client(
                        "sqs",
                        region_name=settings.aws_region,
                        endpoint_url=settings.sqs_endpoint_url,
                        config=config,
                    )
                )
                for config in (calls, polls)
            ]
            # The queue-age metric lives in CloudWatch; a slow one must not hold up ``depths``.
            cloudwatch = await stack.enter_async_context(
                get_session().create_client(
                    "cloudwatch",
                    region_name=settings.aws_region,
                    endpoint_url=cloudwatch_endpoint(settings),
                    config=AioConfig(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
                )
            )
        return cls(client, settings, stack, SqsQueueAges(cloudwatch), poller=poller)

    async def ping(self) -> None:
        with _unavailable("ping"):
            await self._client.list_queues(QueueNamePrefix=self.prefix, MaxResults=1)

    async def close(self) -> None:
        # Polls still running from a multi-type receive: what they took reappears after its
        # visibility timeout (SQS's usual redelivery); nobody is left to hand it to.
        for task in self._in_flight.values():
            task.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        self._in_flight.clear()
        await self._sends.drain()
        await self._deletes.drain()
        await self._stack.aclose()

    # -- queues -----------------------------------------------------------------------------
    def _name(self, type: str, dead: bool = False, high: bool = False) -> str:
        return f"{self.prefix}{type}{DLQ_SUFFIX if dead else HIGH_SUFFIX if high else ''}"

    async def _lookup(self, name: str) -> str | None:
        """The URL of queue ``name``, or ``None`` if it does not exist."""
        if name in self._urls:
            return self._urls[name]
        with _unavailable(f"GetQueueUrl {name}"):
            try:
                response = await self._client.get_queue_url(QueueName=name)
            except ClientError as exc:
                if _code(exc) in _MISSING_QUEUE:
                    return None
                raise
        self._urls[name] = url = str(response["QueueUrl"])
        return url

    async def _ensure(self, type: str) -> None:
        lock = self._ensuring.setdefault(type, asyncio.Lock())
        async with lock:
            dead, lanes = self._name(type, dead=True), [self._name(type), self._name(type, high=True)]
            missing = [name for name in (*lanes, dead) if await self._lookup(name) is None]
            if not missing:
                return
            if not self.create_queues:
                raise ConfigurationError(
                    f"SQS queue {missing[0]!r} does not exist (JOBPULSE_SQS_CREATE_QUEUES is off: create it)"
                )
            with _unavailable(f"creating the queues of {type!r}"):
                retention = {"MessageRetentionPeriod": str(RETENTION_SECONDS)}
                dlq_url = self._urls.get(dead)
                if dlq_url is None:
                    dlq_url = str(
                        (await self._client.create_queue(QueueName=dead, Attributes=retention))["QueueUrl"]
                    )
                arn = await self._client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
                policy = {
                    "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                    "maxReceiveCount": MAX_RECEIVE_COUNT,
                }
                attributes = {**retention, "RedrivePolicy": orjson.dumps(policy).decode()}
                created = {
                    name: str(
                        (await self._client.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
                    )
                    for name in lanes
                    if name in missing
                }
            self._urls.update({dead: dlq_url, **created})
            log.info("SQS queues created", queues=missing)

    async def _url(self, type: str, dead: bool = False, high: bool = False) -> str:
        name = self._name(type, dead, high)
        url = self._urls.get(name)
        if url is None:
            await self._ensure(type)
            url = self._urls[name]
        return url

    async def ensure_queues(self, types: Sequence[str]) -> None:
        """Create missing queues, or (with ``sqs_create_queues`` off) raise ``ConfigurationError``."""
        for type in types:
            await self._ensure(type)

    # -- messages ---------------------------------------------------------------------------
    async def _send(self, url: str, job_id: JobId, type: str, delay_seconds: float) -> None:
        await self._sends.run(url, (_body(job_id, type), _seconds(delay_seconds, MAX_DELAY_SECONDS)))

    async def _send_batch(self, url: str, messages: list[tuple[str, int]]) -> list[None | BaseException]:
        """One ``SendMessageBatch`` for the sends to ``url`` that waited together (group commit).

        Each sender learns its own message's fate: an entry SQS refused fails only its sender,
        as a lone ``SendMessage`` would have (the caller leaves that job to the sweeper).
        """
        entries = [
            {"Id": str(i), "MessageBody": body, "DelaySeconds": delay}
            for i, (body, delay) in enumerate(messages)
        ]
        with _unavailable("SendMessageBatch"):
            response = await self._client.send_message_batch(QueueUrl=url, Entries=entries)
        failed = {str(f.get("Id")): f for f in response.get("Failed", [])}
        outcomes: list[None | BaseException] = []
        for i in range(len(messages)):
            failure = failed.get(str(i))
            outcomes.append(
                None
                if failure is None
                else BackendUnavailableError(
                    f"SQS SendMessageBatch refused a message: {failure.get('Code')}: {failure.get('Message')}"
                )
            )
        return outcomes

    async def send(self, job: Job, delay_seconds: float = 0.0) -> None:
        """To the type's high lane when ``job.priority > 0``, else to its main lane."""
        url = await self._url(job.type, high=job.priority > 0)
        await self._send(url, job.id, job.type, delay_seconds)

    def _parse(self, message: dict[str, Any], type: str) -> JobId | None:
        try:
            body = orjson.loads(message.get("Body", ""))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or body.get("type") != type:
            return None
        job_id = body.get("job_id")
        return job_id if isinstance(job_id, str) and job_id else None

    async def _drop_malformed(self, url: str, message: dict[str, Any]) -> None:
        self.malformed_count += 1
        log.warning("malformed SQS message dropped", queue_url=url, body=str(message.get("Body", ""))[:200])
        try:
            await self._deletes.delete(url, message["ReceiptHandle"])
        except BackendUnavailableError as exc:
            # It comes back after its visibility timeout and is dropped then; the good ones go on.
            log.warning("could not delete a malformed SQS message", queue_url=url, error=str(exc))

    async def _receive_from(self, lane: Lane, count: int, wait: int, visibility: int) -> list[Delivery]:
        type, high = lane
        url = await self._url(type, high=high)
        with _unavailable("ReceiveMessage"):
            response = await self._poller.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait,
                VisibilityTimeout=visibility,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        deliveries = []
        for message in response.get("Messages", []):
            job_id = self._parse(message, type)
            if job_id is None:
                await self._drop_malformed(url, message)
                continue
            count_received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            deliveries.append(Delivery(job_id, type, f"{url}|{message['ReceiptHandle']}", count_received))
        return deliveries

    async def delivery_from(
        self, queue_name: str, body: str, receipt_handle: str, receive_count: int = 1
    ) -> Delivery | None:
        """A message someone else received from ``queue_name`` (an AWS Lambda event source) as a
        ``Delivery``; a body that is not a jobpulse message is deleted, logged and counted (``None``).

        Raise ``ConfigurationError`` for a queue that is not a job queue of this prefix.
        """
        type = queue_name.removeprefix(self.prefix)
        high = type.endswith(HIGH_SUFFIX)
        type = type.removesuffix(HIGH_SUFFIX)
        if not queue_name.startswith(self.prefix) or not type or type.endswith(DLQ_SUFFIX):
            raise ConfigurationError(f"{queue_name!r} is not a jobpulse job queue (prefix {self.prefix!r})")
        url = await self._url(type, high=high)
        message = {"Body": body, "ReceiptHandle": receipt_handle}
        job_id = self._parse(message, type)
        if job_id is None:
            await self._drop_malformed(url, message)
            return None
        return Delivery(job_id, type, f"{url}|{receipt_handle}", receive_count)

    async def receive(
        self, types: Sequence[str], max_messages: int, wait_seconds: float, visibility_seconds: float
    ) -> list[Delivery]:
        if not types:
            return []
        max_messages = max(1, min(10, max_messages))
        visibility = _seconds(visibility_seconds, MAX_VISIBILITY_SECONDS)
        return await self._receive_many(list(types), max_messages, wait_seconds, visibility)

    async def ack(self, delivery: Delivery) -> None:
        await self._deletes.delete(*_split(delivery.receipt))

    async def _change_visibility(self, delivery: Delivery, seconds: float) -> str | None:
        """Hide the message for ``seconds`` more; ``None``, or why not when it is gone."""
        url, handle = _split(delivery.receipt)
        with _unavailable("ChangeMessageVisibility"):
            try:
                await self._client.change_message_visibility(
                    QueueUrl=url,
                    ReceiptHandle=handle,
                    VisibilityTimeout=_seconds(seconds, MAX_VISIBILITY_SECONDS),
                )
            except ClientError as exc:
                if not is_gone(exc):
                    raise
                return _code(exc)
        return None

    async def release(self, delivery: Delivery, delay_seconds: float) -> None:
        """Visible again after the delay; if the receipt is no longer good, send a new message."""
        gone = await self._change_visibility(delivery, delay_seconds)
        if gone is not None:
            # The message is gone (acked elsewhere, or its 12 h are up): never lose the job.
            log.info("receipt no longer valid; sending a new message", job_id=delivery.job_id, reason=gone)
            url, _ = _split(delivery.receipt)
            await self._send(url, delivery.job_id, delivery.type, delay_seconds)

    async def extend(self, delivery: Delivery, visibility_seconds: float) -> None:
        gone = await self._change_visibility(delivery, visibility_seconds)
        if gone is not None:
            # Nothing left to keep hidden; the job's lease in the store is what counts.
            log.info("extend: message no longer held", job_id=delivery.job_id, reason=gone)

    async def dead_letter(self, delivery: Delivery) -> None:
        """Send a copy to the DLQ first, then delete the original (a crash between: a duplicate)."""
        await self._send(await self._url(delivery.type, dead=True), delivery.job_id, delivery.type, 0)
        await self.ack(delivery)

    async def redrive_dead_letters(self, type: str) -> list[JobId]:
        url = await self._url(type, dead=True)
        job_ids: list[JobId] = []
        wait = 0
        while True:
            with _unavailable("ReceiveMessage (dead letters)"):
                response = await self._client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=60
                )
            messages = response.get("Messages", [])
            if not messages:
                if wait:
                    return list(dict.fromkeys(job_ids))
                wait = REDRIVE_CONFIRM_SECONDS
                continue
            wait = 0
            for message in messages:
                job_id = self._parse(message, type)
                if job_id is None:
                    await self._drop_malformed(url, message)
                else:
                    job_ids.append(job_id)
                    await self._deletes.delete(url, message["ReceiptHandle"])

    async def _attributes(self, name: str, names: list[str]) -> dict[str, Any]:
        """Queue ``name``'s attributes ``names``; none for a queue that does not exist (yet)."""
        url = await self._lookup(name)
        if url is None:
            return {}
        with _unavailable("GetQueueAttributes"):
            attributes: dict[str, Any] = (
                await self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
            )["Attributes"]
        return attributes

    async def _depth(self, type: str) -> QueueDepth:
        """Both lanes' counts added up; the dead-letter queue's; the oldest message of either lane."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        lanes = [self._name(type), self._name(type, high=True)]
        main, high, dead = await asyncio.gather(
            *(self._attributes(name, names) for name in lanes),
            self._attributes(self._name(type, dead=True), names[:1]),
        )
        ages = [
            await self._ages.age(name)
            for name, attrs in zip(lanes, (main, high), strict=True)
            if self._ages is not None and attrs
        ]
        return QueueDepth(
            ready=int(main.get(names[0], 0)) + int(high.get(names[0], 0)),
            in_flight=int(main.get(names[1], 0)) + int(high.get(names[1], 0)),
            delayed=int(main.get(names[2], 0)) + int(high.get(names[2], 0)),
            dead=int(dead.get(names[0], 0)),
            oldest_age_seconds=max(ages, default=0.0),
        )

    async def depths(self, types: Sequence[str]) -> dict[str, QueueDepth]:
        """Approximate counts (SQS's own); a type whose queues do not exist yet counts zero."""
        found = await asyncio.gather(*(self._depth(t) for t in types))
        return dict(zip(types, found, strict=True))
