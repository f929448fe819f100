"""``QueueDepth.oldest_age_seconds``: from the queue table (embedded) and from CloudWatch (SQS)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from core.backends.queue.sqlite import SqliteJobQueue
from core.backends.queue.sqs import SqsJobQueue
from core.backends.sqlite_db import SqliteDatabase
from core.models import Job, new_job_id
from core.settings import Settings
from tests.support.servers import free_port, unique_name


def job(type: str = "noop") -> Job:
    return Job(id=new_job_id(), type=type, owner="alice", payload={})


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[SqliteJobQueue]:
    db = SqliteDatabase(tmp_path / "queue.sqlite3")
    yield SqliteJobQueue(db)
    await db.close()


async def age_back(queue: SqliteJobQueue, seconds: float) -> None:
    """Make every row have become visible ``seconds`` earlier."""

    def op(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE queue SET visible_us = visible_us - ?", (int(seconds * 1e6),))

    await queue.db.write(op)


async def test_embedded_age_is_how_long_the_oldest_ready_message_has_waited(embedded: SqliteJobQueue) -> None:
    """A message ready for a minute reports an age of about a minute."""
    await embedded.send(job())
    await age_back(embedded, 60)
    await embedded.send(job())

    depth = (await embedded.depths(["noop"]))["noop"]

    assert 60 <= depth.oldest_age_seconds < 70


async def test_embedded_age_ignores_delayed_and_received_messages(embedded: SqliteJobQueue) -> None:
    """Messages not yet visible, or held by a worker, do not age the queue."""
    await embedded.send(job(), delay_seconds=3600)
    await embedded.send(job())
    await embedded.receive(["noop"], 1, 0, 3600)

    depth = (await embedded.depths(["noop"]))["noop"]

    assert (depth.delayed, depth.in_flight, depth.oldest_age_seconds) == (1, 1, 0.0)


async def test_sqs_age_is_cloudwatchs_approximate_age_of_oldest_message(sqs_endpoint: str) -> None:
    """On SQS the age is CloudWatch's ``ApproximateAgeOfOldestMessage`` for the queue."""
    prefix = unique_name("t") + "-"
    queue = await SqsJobQueue.open(Settings(sqs_endpoint_url=sqs_endpoint, sqs_queue_prefix=prefix))
    try:
        await queue.ensure_queues(["noop"])
        boto3.client("cloudwatch", endpoint_url=sqs_endpoint, region_name="us-east-1").put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": f"{prefix}noop"}],
                    "Value": 321.0,
                    "Timestamp": datetime.now(UTC) - timedelta(seconds=30),  # published a bit ago
                }
            ],
        )

        depth = (await queue.depths(["noop"]))["noop"]
    finally:
        await queue.close()

    assert depth.oldest_age_seconds == 321.0


async def test_sqs_depths_work_when_cloudwatch_does_not_answer(sqs_endpoint: str) -> None:
    """With no CloudWatch to ask, depths still answer and the age reads 0."""
    settings = Settings(
        sqs_endpoint_url=sqs_endpoint,
        sqs_queue_prefix=unique_name("t") + "-",
        cloudwatch_endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    queue = await SqsJobQueue.open(settings)
    try:
        await queue.ensure_queues(["noop"])
        await queue.send(job())

        depth = (await queue.depths(["noop"]))["noop"]
    finally:
        await queue.close()

    assert (depth.ready, depth.oldest_age_seconds) == (1, 0.0)
