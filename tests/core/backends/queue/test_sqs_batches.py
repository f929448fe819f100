"""SQS sends made at once go out as ``SendMessageBatch``: fewer requests, the same outcome per send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
import orjson
import pytest

from core.backends.queue.sqs import SEND_BATCH, SqsJobQueue
from core.errors import BackendUnavailableError
from core.models import Job, new_job_id
from core.settings import Settings
from tests.support.servers import unique_name

VISIBILITY = 30


@pytest.fixture
async def sqs(sqs_endpoint: str) -> AsyncIterator[SqsJobQueue]:
    queue = await SqsJobQueue.open(
        Settings(sqs_endpoint_url=sqs_endpoint, sqs_queue_prefix=unique_name("t") + "-")
    )
    await queue.ensure_queues(["noop"])
    yield queue
    await queue.close()


def job() -> Job:
    return Job(id=new_job_id(), type="noop", owner="alice", payload={})


class BatchSpy:
    """Wraps the queue client's ``send_message_batch``: records each call's size, and makes SQS
    refuse the entries of ``refused`` jobs as it would a bad entry (the rest go to the real moto)."""

    def __init__(self, client: Any) -> None:
        self.real = client.send_message_batch
        self.sizes: list[int] = []
        self.refused: set[str] = set()

    async def __call__(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sizes.append(len(Entries))
        keep = [e for e in Entries if orjson.loads(e["MessageBody"])["job_id"] not in self.refused]
        response: dict[str, Any] = (
            await self.real(QueueUrl=QueueUrl, Entries=keep) if keep else {"Successful": [], "Failed": []}
        )
        response.setdefault("Failed", [])
        for entry in Entries:
            if entry not in keep:
                response["Failed"].append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                )
        return response


@pytest.fixture
def spy(sqs: SqsJobQueue, monkeypatch: pytest.MonkeyPatch) -> BatchSpy:
    spy = BatchSpy(sqs.client)
    monkeypatch.setattr(sqs.client, "send_message_batch", spy)
    return spy


async def received_ids(sqs: SqsJobQueue, count: int) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        batch = await sqs.receive(["noop"], 10, 2, VISIBILITY)
        if not batch:
            break
        got += [d.job_id for d in batch]
    return got


async def test_concurrent_sends_share_requests_of_at_most_ten(sqs: SqsJobQueue, spy: BatchSpy) -> None:
    """30 sends at once take a few requests of at most ten messages, and each message arrives once."""
    jobs = [job() for _ in range(30)]
    await asyncio.gather(*(sqs.send(j) for j in jobs))
    assert sum(spy.sizes) == 30 and max(spy.sizes) <= SEND_BATCH and len(spy.sizes) <= 4
    assert sorted(await received_ids(sqs, 31)) == sorted(j.id for j in jobs)


async def test_a_lone_send_goes_out_at_once(sqs: SqsJobQueue, spy: BatchSpy) -> None:
    """With nothing else to send, a send is one request of one message."""
    one = job()
    await sqs.send(one)
    assert spy.sizes == [1]
    assert await received_ids(sqs, 1) == [one.id]


async def test_a_refused_entry_fails_only_its_own_send(sqs: SqsJobQueue, spy: BatchSpy) -> None:
    """When SQS refuses one entry of a batch, that sender gets ``BackendUnavailableError`` (its job
    is left to the sweeper); the others of the batch are sent."""
    jobs = [job() for _ in range(6)]
    spy.refused.add(jobs[3].id)
    outcomes = await asyncio.gather(*(sqs.send(j) for j in jobs), return_exceptions=True)
    assert [isinstance(o, BackendUnavailableError) for o in outcomes] == [
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    assert "InternalError" in str(outcomes[3])
    assert sorted(await received_ids(sqs, 6)) == sorted(j.id for n, j in enumerate(jobs) if n != 3)


async def test_a_failed_request_fails_each_of_its_sends(sqs: SqsJobQueue, sqs_endpoint: str) -> None:
    """When the whole request fails (its queue was deleted), every send it carried raises."""
    raw = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    url = raw.get_queue_url(QueueName=f"{sqs.prefix}noop")["QueueUrl"]
    raw.delete_queue(QueueUrl=url)
    outcomes = await asyncio.gather(*(sqs.send(job()) for _ in range(4)), return_exceptions=True)
    assert all(isinstance(o, BackendUnavailableError) for o in outcomes), outcomes
