"""The ``JobQueue`` contract, run against every queue (SQLite and SQS over moto's server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import boto3
import pytest

from core.models import Job, new_job_id
from core.ports import Delivery, JobQueue, QueueDepth
from core.settings import Settings
from tests.support.servers import unique_name

VISIBILITY = 30.0


def make_job(type: str = "noop", priority: int = 0) -> Job:
    return Job(id=new_job_id(), type=type, owner="alice", payload={}, priority=priority)


async def receive_all(queue: JobQueue, types: list[str], count: int, within: float = 10.0) -> list[Delivery]:
    """Receive until ``count`` messages came or ``within`` seconds passed."""
    got: list[Delivery] = []
    deadline = time.monotonic() + within
    while len(got) < count and time.monotonic() < deadline:
        got += await queue.receive(types, count - len(got), min(2.0, deadline - time.monotonic()), VISIBILITY)
    return got


async def depth(queue: JobQueue, type: str = "noop") -> QueueDepth:
    return (await queue.depths([type]))[type]


async def test_ping_answers(queue: JobQueue) -> None:
    """A reachable queue answers ``ping``."""
    await queue.ping()


async def test_sent_message_is_received_once_with_its_job(queue: JobQueue) -> None:
    """A sent message comes back naming its job and type, first receive counted as 1."""
    job = make_job()
    await queue.send(job)
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    assert (delivery.job_id, delivery.type, delivery.receive_count) == (job.id, "noop", 1)


async def test_receive_from_an_empty_queue_returns_nothing(queue: JobQueue) -> None:
    """With nothing to deliver, ``receive`` returns an empty list once the wait is over."""
    await queue.ensure_queues(["noop"])
    assert await queue.receive(["noop"], 10, 0, VISIBILITY) == []


async def test_receive_returns_at_most_max_messages(queue: JobQueue) -> None:
    """``receive`` never returns more than ``max_messages``."""
    for _ in range(3):
        await queue.send(make_job())
    first = await queue.receive(["noop"], 2, 5, VISIBILITY)
    assert 1 <= len(first) <= 2
    assert len(await receive_all(queue, ["noop"], 3 - len(first))) == 3 - len(first)


async def test_long_poll_returns_a_message_sent_during_the_wait(queue: JobQueue) -> None:
    """A receive waiting on an empty queue returns a message sent meanwhile, before its wait ends."""
    await queue.ensure_queues(["noop"])
    job = make_job()
    waiting = asyncio.create_task(queue.receive(["noop"], 10, 60, VISIBILITY))
    # Given a receive that is waiting (it has found nothing and not answered) ...
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done
    # ... a message sent now is its answer, well before its 60 s wait ends.
    await queue.send(job)
    async with asyncio.timeout(30):
        deliveries = await waiting
    assert [d.job_id for d in deliveries] == [job.id]


async def test_received_message_is_hidden_from_other_receivers(queue: JobQueue) -> None:
    """While its visibility lasts, a received message is not delivered again."""
    await queue.send(make_job())
    assert len(await queue.receive(["noop"], 10, 5, VISIBILITY)) == 1
    assert await queue.receive(["noop"], 10, 0, VISIBILITY) == []


async def test_ack_deletes_the_message(queue: JobQueue) -> None:
    """An acknowledged message is gone: nothing ready, in flight or delayed."""
    await queue.send(make_job())
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    await queue.ack(delivery)
    assert await depth(queue) == QueueDepth()


async def test_unacked_message_is_redelivered_after_its_visibility(queue: JobQueue) -> None:
    """A message neither acked nor extended comes back after its visibility timeout, counted again."""
    job = make_job()
    await queue.send(job)
    await queue.receive(["noop"], 10, 5, 1)
    [again] = await receive_all(queue, ["noop"], 1)
    assert again.job_id == job.id and again.receive_count == 2


async def test_extend_keeps_the_message_hidden(queue: JobQueue) -> None:
    """An extended message stays hidden past its first visibility timeout."""
    await queue.send(make_job())
    [delivery] = await queue.receive(["noop"], 10, 5, 1)
    await queue.extend(delivery, VISIBILITY)
    assert await queue.receive(["noop"], 10, 2.5, VISIBILITY) == []


async def test_release_without_delay_makes_it_visible_now(queue: JobQueue) -> None:
    """A message released with no delay is delivered again at once."""
    job = make_job()
    await queue.send(job)
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    await queue.release(delivery, 0)
    assert [d.job_id for d in await queue.receive(["noop"], 10, 5, VISIBILITY)] == [job.id]


async def test_release_with_delay_hides_it_until_then(queue: JobQueue) -> None:
    """A message released with a delay is not delivered before the delay, and is after it."""
    job = make_job()
    await queue.send(job)
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    await queue.release(delivery, 2)
    assert await queue.receive(["noop"], 10, 0, VISIBILITY) == []
    assert [d.job_id for d in await receive_all(queue, ["noop"], 1)] == [job.id]


async def test_release_of_an_acked_message_sends_it_again(queue: JobQueue) -> None:
    """Releasing a message that is gone puts a new one in the queue: a job is never lost."""
    job = make_job()
    await queue.send(job)
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    await queue.ack(delivery)
    await queue.release(delivery, 0)
    assert [d.job_id for d in await receive_all(queue, ["noop"], 1)] == [job.id]


async def test_send_with_delay_is_delivered_after_it(queue: JobQueue) -> None:
    """A delayed message is counted as delayed and delivered once the delay is over."""
    job = make_job()
    await queue.send(job, delay_seconds=2)
    assert (await depth(queue)).delayed == 1
    assert await queue.receive(["noop"], 10, 0, VISIBILITY) == []
    assert [d.job_id for d in await receive_all(queue, ["noop"], 1)] == [job.id]


async def test_depths_count_ready_and_in_flight(queue: JobQueue) -> None:
    """Depths count visible messages as ready and received ones as in flight, per type."""
    for _ in range(3):
        await queue.send(make_job())
    await queue.send(make_job("sleep"))
    await receive_all(queue, ["noop"], 1)
    depths = await queue.depths(["noop", "sleep"])
    assert (depths["noop"].ready, depths["noop"].in_flight, depths["noop"].dead) == (2, 1, 0)
    assert depths["sleep"].ready == 1


async def test_dead_letter_moves_the_message_and_redrive_takes_it_back(queue: JobQueue) -> None:
    """A dead-lettered message leaves the queue for its DLQ; redrive empties the DLQ, naming the jobs."""
    job = make_job()
    await queue.send(job)
    [delivery] = await queue.receive(["noop"], 10, 5, VISIBILITY)
    await queue.dead_letter(delivery)
    after = await depth(queue)
    assert (after.ready, after.in_flight, after.dead) == (0, 0, 1)
    assert await queue.redrive_dead_letters("noop") == [job.id]
    assert (await depth(queue)).dead == 0
    assert await queue.receive(["noop"], 10, 0, VISIBILITY) == []


async def test_receive_over_several_types_delivers_all_of_them(queue: JobQueue) -> None:
    """One receiver of several types gets every type's messages."""
    jobs = [make_job(t) for t in ("noop", "sleep", "noop", "sleep")]
    for job in jobs:
        await queue.send(job)
    got = await receive_all(queue, ["noop", "sleep"], 4)
    assert sorted((d.type, d.job_id) for d in got) == sorted((j.type, j.id) for j in jobs)


async def test_higher_priority_first(queue: JobQueue) -> None:
    """Within a type, a job of higher priority sent last is received first (SQS: its high lane)."""
    low, high = make_job(priority=0), make_job(priority=5)
    await queue.send(low)
    await queue.send(high)
    [first] = await queue.receive(["noop"], 1, 5, VISIBILITY)
    assert first.job_id == high.id
    assert [d.job_id for d in await receive_all(queue, ["noop"], 1)] == [low.id]


async def test_concurrent_sends_each_arrive_exactly_once(queue: JobQueue) -> None:
    """Sends made at once (SQS: batched per queue) each deliver their own job, once, with its delay."""
    await queue.ensure_queues(["noop", "sleep"])
    jobs = [make_job("noop" if n % 3 else "sleep") for n in range(31)]
    delayed = make_job()
    await asyncio.gather(*(queue.send(job) for job in jobs), queue.send(delayed, delay_seconds=60))
    depths = await queue.depths(["noop", "sleep"])
    assert (depths["noop"].ready, depths["noop"].delayed, depths["sleep"].ready) == (20, 1, 11)
    got = await receive_all(queue, ["noop", "sleep"], len(jobs))
    assert sorted(d.job_id for d in got) == sorted(job.id for job in jobs)
    assert all(d.type == job.type for d in got for job in jobs if job.id == d.job_id)
    assert await queue.receive(["noop", "sleep"], 10, 0, VISIBILITY) == []


# -- SQS only ------------------------------------------------------------------------------------


@pytest.fixture
async def sqs_settings(sqs_endpoint: str) -> Settings:
    return Settings(sqs_endpoint_url=sqs_endpoint, sqs_queue_prefix=unique_name("t") + "-")


@pytest.fixture
async def sqs_queue(sqs_settings: Settings) -> AsyncIterator[JobQueue]:
    from core.backends.queue.sqs import SqsJobQueue

    sqs = await SqsJobQueue.open(sqs_settings)
    yield sqs
    await sqs.close()


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"type": "noop"}',
        '["job_id"]',
        '{"job_id": "x", "type": "sleep"}',
        '{"job_id": 7, "type": "noop"}',
    ],
)
async def test_sqs_drops_malformed_messages(
    sqs_queue: JobQueue, sqs_settings: Settings, sqs_endpoint: str, body: str
) -> None:
    """SQS: a message that is not a jobpulse message is deleted and counted, never returned."""
    await sqs_queue.ensure_queues(["noop"])
    raw = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    url = raw.get_queue_url(QueueName=f"{sqs_settings.sqs_queue_prefix}noop")["QueueUrl"]
    raw.send_message(QueueUrl=url, MessageBody=body)
    job = make_job()
    await sqs_queue.send(job)
    got: list[Delivery] = []
    deadline = time.monotonic() + 10
    while (not got or sqs_queue.malformed_count < 1) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        got += await sqs_queue.receive(["noop"], 10, 1, VISIBILITY)
    assert [d.job_id for d in got] == [job.id]
    assert sqs_queue.malformed_count == 1  # type: ignore[attr-defined]
    assert (await depth(sqs_queue)).ready == 0
