"""SQS queue specifics: queue creation and verification, fairness across types, unreachable SQS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import boto3
import orjson
import pytest

from core.backends.queue.sqs import SqsJobQueue
from core.errors import BackendUnavailableError, ConfigurationError
from core.models import Job, new_job_id
from core.settings import Settings
from tests.support.servers import free_port, unique_name


@pytest.fixture
def sqs_settings(sqs_endpoint: str) -> Callable[..., Settings]:
    prefix = unique_name("t") + "-"

    def make(**overrides: object) -> Settings:
        return Settings(sqs_endpoint_url=sqs_endpoint, sqs_queue_prefix=prefix, **overrides)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def sqs(sqs_settings: Callable[..., Settings]) -> AsyncIterator[SqsJobQueue]:
    queue = await SqsJobQueue.open(sqs_settings())
    yield queue
    await queue.close()


def job(type: str = "noop") -> Job:
    return Job(id=new_job_id(), type=type, owner="alice", payload={})


async def test_verify_only_names_the_missing_queue(sqs_settings: Callable[..., Settings]) -> None:
    """With queue creation off, ``ensure_queues`` raises ``ConfigurationError`` naming the missing queue."""
    settings = sqs_settings(sqs_create_queues=False)
    queue = await SqsJobQueue.open(settings)
    try:
        with pytest.raises(ConfigurationError, match=f"{settings.sqs_queue_prefix}noop"):
            await queue.ensure_queues(["noop"])
    finally:
        await queue.close()


async def test_verify_only_accepts_existing_queues(
    sqs: SqsJobQueue, sqs_settings: Callable[..., Settings]
) -> None:
    """With queue creation off, queues that exist are used as they are."""
    await sqs.ensure_queues(["noop"])
    verifier = await SqsJobQueue.open(sqs_settings(sqs_create_queues=False))
    try:
        await verifier.ensure_queues(["noop"])
        await verifier.send(job())
        assert len(await verifier.receive(["noop"], 10, 5, 30)) == 1
    finally:
        await verifier.close()


async def test_main_queue_redrives_to_its_dead_letter_queue(
    sqs: SqsJobQueue, sqs_endpoint: str, sqs_settings: Callable[..., Settings]
) -> None:
    """The main queue carries a redrive policy to ``<prefix><type>-dlq`` as a poison-message backstop."""
    await sqs.ensure_queues(["noop"])
    prefix = sqs_settings().sqs_queue_prefix
    raw = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    main = raw.get_queue_url(QueueName=f"{prefix}noop")["QueueUrl"]
    policy = orjson.loads(
        raw.get_queue_attributes(QueueUrl=main, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert policy["deadLetterTargetArn"].endswith(f":{prefix}noop-dlq")
    assert int(policy["maxReceiveCount"]) >= 100


async def test_queues_keep_messages_14_days(
    sqs: SqsJobQueue, sqs_endpoint: str, sqs_settings: Callable[..., Settings]
) -> None:
    """Both queues of a type are created keeping messages 14 days, the SQS maximum (its default is 4)."""
    await sqs.ensure_queues(["noop"])
    prefix = sqs_settings().sqs_queue_prefix
    raw = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    kept = {
        name: raw.get_queue_attributes(
            QueueUrl=raw.get_queue_url(QueueName=name)["QueueUrl"], AttributeNames=["MessageRetentionPeriod"]
        )["Attributes"]["MessageRetentionPeriod"]
        for name in (f"{prefix}noop", f"{prefix}noop-dlq")
    }
    assert set(kept.values()) == {str(14 * 24 * 3600)}


async def test_message_body_names_only_the_job(
    sqs: SqsJobQueue, sqs_endpoint: str, sqs_settings: Callable[..., Settings]
) -> None:
    """The message body is ``{"job_id", "type"}``: the store holds everything else."""
    sent = job()
    await sqs.send(sent)
    raw = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    url = raw.get_queue_url(QueueName=f"{sqs_settings().sqs_queue_prefix}noop")["QueueUrl"]
    [message] = raw.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert orjson.loads(message["Body"]) == {"job_id": sent.id, "type": "noop"}


async def test_receive_over_types_shares_max_messages(sqs: SqsJobQueue) -> None:
    """Receiving two busy types with room for two gets one message of each: neither starves."""
    for type in ("noop", "noop", "noop", "sleep", "sleep", "sleep"):
        await sqs.send(job(type))
    deliveries = await sqs.receive(["noop", "sleep"], 2, 5, 30)
    assert sorted(d.type for d in deliveries) == ["noop", "sleep"]


async def test_concurrent_acks_all_delete(sqs: SqsJobQueue) -> None:
    """Acks made at once (batched into one request) each delete their message."""
    for _ in range(7):
        await sqs.send(job())
    deliveries = []
    while len(deliveries) < 7:
        deliveries += await sqs.receive(["noop"], 10, 5, 30)
    await asyncio.gather(*(sqs.ack(d) for d in deliveries))
    depth = (await sqs.depths(["noop"]))["noop"]
    assert (depth.ready, depth.in_flight) == (0, 0)


async def test_depths_of_missing_queues_are_zero(sqs: SqsJobQueue) -> None:
    """A type whose queues were never created reports empty depths instead of failing."""
    depth = (await sqs.depths(["never"]))["never"]
    assert (depth.ready, depth.in_flight, depth.delayed, depth.dead) == (0, 0, 0, 0)


@pytest.fixture
async def unreachable() -> AsyncIterator[SqsJobQueue]:
    settings = Settings(sqs_endpoint_url=f"http://127.0.0.1:{free_port()}", sqs_queue_prefix="t-")
    queue = await SqsJobQueue.open(settings)
    yield queue
    await queue.close()


async def test_ping_of_unreachable_sqs_is_backend_unavailable(unreachable: SqsJobQueue) -> None:
    """``ping`` on an endpoint nobody listens on raises ``BackendUnavailableError``."""
    with pytest.raises(BackendUnavailableError):
        await unreachable.ping()


async def test_send_to_unreachable_sqs_is_backend_unavailable(unreachable: SqsJobQueue) -> None:
    """``send`` on an unreachable endpoint raises ``BackendUnavailableError`` (the sweeper sends later)."""
    with pytest.raises(BackendUnavailableError):
        await unreachable.send(job())


async def test_receive_over_many_types_returns_the_busy_types_messages_promptly(sqs: SqsJobQueue) -> None:
    """With one busy type among eight, one receive of 10 brings at least 5 of its messages (how
    quickly, the idle types' long polls not waited on, is ``bench/sqs_fairness.py``'s)."""
    types = [f"t{i}" for i in range(8)]
    await sqs.ensure_queues(types)
    await asyncio.gather(*(sqs.send(job("t3")) for _ in range(20)))

    deliveries = await sqs.receive(types, 10, 10, 60)

    assert len([d for d in deliveries if d.type == "t3"]) >= 5


async def test_waiting_receive_over_many_types_answers_when_one_queue_gets_a_message(
    sqs: SqsJobQueue,
) -> None:
    """A receive long-polling eight empty types returns a message sent to one of them before the others' polls end."""
    types = [f"t{i}" for i in range(8)]
    await sqs.ensure_queues(types)
    receiving = asyncio.create_task(sqs.receive(types, 10, 10, 60))
    sent = job("t5")
    await sqs.send(sent)

    deliveries = await asyncio.wait_for(receiving, 1.5)

    assert [d.job_id for d in deliveries] == [sent.id]
