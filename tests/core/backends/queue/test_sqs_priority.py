"""SQS priority lanes: ``<prefix><type>-high`` for jobs with priority > 0, drained first (moto's server)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import boto3
import orjson
import pytest

from core.backends.queue.sqs import SqsJobQueue
from core.models import Job, new_job_id
from core.ports import Delivery
from core.settings import Settings
from tests.support.servers import unique_name

VISIBILITY = 30


@pytest.fixture
def sqs_settings(sqs_endpoint: str) -> Callable[[], Settings]:
    prefix = unique_name("t") + "-"
    return lambda: Settings(sqs_endpoint_url=sqs_endpoint, sqs_queue_prefix=prefix)


@pytest.fixture
async def sqs(sqs_settings: Callable[[], Settings]) -> AsyncIterator[SqsJobQueue]:
    queue = await SqsJobQueue.open(sqs_settings())
    await queue.ensure_queues(["noop", "sleep"])
    yield queue
    await queue.close()


def job(priority: int = 0, type: str = "noop") -> Job:
    return Job(id=new_job_id(), type=type, owner="alice", payload={}, priority=priority)


async def receive_all(queue: SqsJobQueue, types: list[str], count: int) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got += await queue.receive(types, count - len(got), 2, VISIBILITY)
    return got


async def test_a_high_priority_job_sent_after_many_low_ones_is_received_first(sqs: SqsJobQueue) -> None:
    """Twenty jobs of priority 0, then one of priority 5: the first receive answers the urgent one."""
    low = [job() for _ in range(20)]
    for item in low:
        await sqs.send(item)
    urgent = job(priority=5)
    await sqs.send(urgent)
    first = await sqs.receive(["noop"], 10, 5, VISIBILITY)
    assert first[0].job_id == urgent.id
    rest = first[1:] + await receive_all(sqs, ["noop"], 20 - len(first[1:]))
    assert sorted(d.job_id for d in rest) == sorted(j.id for j in low)


async def test_high_lanes_come_first_across_types(sqs: SqsJobQueue) -> None:
    """Receiving for two types, each type's urgent job comes before any ordinary one."""
    ordinary = [job(type=t) for t in ("noop", "sleep") for _ in range(3)]
    for item in ordinary:
        await sqs.send(item)
    urgent = [job(priority=1, type="noop"), job(priority=9, type="sleep")]
    for item in urgent:
        await sqs.send(item)
    got = await receive_all(sqs, ["noop", "sleep"], 8)
    assert {d.job_id for d in got[:2]} == {j.id for j in urgent}
    assert {d.job_id for d in got[2:]} == {j.id for j in ordinary}


async def test_both_lanes_redrive_to_the_one_dead_letter_queue(
    sqs: SqsJobQueue, sqs_settings: Callable[[], Settings], sqs_endpoint: str
) -> None:
    """The main and the high lane carry a redrive policy to the type's single ``-dlq``."""
    prefix = sqs_settings().sqs_queue_prefix
    client = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    for name in (f"{prefix}noop", f"{prefix}noop-high"):
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
        assert orjson.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(f":{prefix}noop-dlq")


async def test_a_dead_letter_from_the_high_lane_is_redriven_by_id(sqs: SqsJobQueue) -> None:
    """An urgent job's dead letter lands in the type's DLQ; redrive names it (the retry re-sends it by priority)."""
    urgent = job(priority=3)
    await sqs.send(urgent)
    [delivery] = await receive_all(sqs, ["noop"], 1)
    await sqs.dead_letter(delivery)
    assert (await sqs.depths(["noop"]))["noop"].dead == 1
    assert await sqs.redrive_dead_letters("noop") == [urgent.id]


async def test_depths_count_both_lanes(sqs: SqsJobQueue) -> None:
    """A type's ready count adds up its main and its high lane."""
    await sqs.send(job())
    await sqs.send(job(priority=2))
    assert (await sqs.depths(["noop"]))["noop"].ready == 2


async def test_an_older_layout_gets_its_high_lane_at_start(
    sqs: SqsJobQueue, sqs_settings: Callable[[], Settings], sqs_endpoint: str
) -> None:
    """Queues made before the high lane existed (main and DLQ only) get the lane, the others kept as they are."""
    prefix = sqs_settings().sqs_queue_prefix
    client = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    client.delete_queue(QueueUrl=client.get_queue_url(QueueName=f"{prefix}noop-high")["QueueUrl"])
    kept = job()
    await sqs.send(kept)
    fresh = await SqsJobQueue.open(sqs_settings())
    try:
        await fresh.ensure_queues(["noop"])
        assert client.get_queue_url(QueueName=f"{prefix}noop-high")["QueueUrl"]
        await fresh.send(urgent := job(priority=1))
        got = await receive_all(fresh, ["noop"], 2)
        assert [d.job_id for d in got] == [urgent.id, kept.id]
    finally:
        await fresh.close()


async def test_a_lambda_record_from_the_high_lane_is_a_delivery(
    sqs: SqsJobQueue, sqs_settings: Callable[[], Settings]
) -> None:
    """``delivery_from`` takes records of ``<prefix><type>-high`` as that type's messages."""
    prefix = sqs_settings().sqs_queue_prefix
    body = orjson.dumps({"job_id": "j1", "type": "noop"}).decode()
    delivery = await sqs.delivery_from(f"{prefix}noop-high", body, "handle")
    assert delivery is not None and (delivery.job_id, delivery.type) == ("j1", "noop")
    assert delivery.receipt.split("|")[0].endswith(f"{prefix}noop-high")
