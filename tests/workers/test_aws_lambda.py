"""The Lambda handler, called with real SQS-shaped events built from messages received from moto's SQS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from core.backends import open_backends
from core.errors import ConfigurationError
from core.models import Job, JobStatus
from core.service import JobService
from core.settings import Settings
from core.stats_history import stats_history
from tests.workers.conftest import reload, submit
from workers import aws_lambda
from workers.registry import load_registry

REGION = "us-east-1"
DEADLINE = 15.0


@pytest.fixture
def lambda_env(distributed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The function's environment (MongoDB, SQS, Redis of this test); its container closed afterwards."""
    env = {
        **distributed_env,
        "JOBPULSE_JOB_MODULES": "tests.support.jobtypes",
        "JOBPULSE_BACKOFF_BASE_SECONDS": "600",  # a retried job is due well after the test
        "JOBPULSE_VISIBILITY_TIMEOUT": "3",  # heartbeats every second
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield Settings()
    aws_lambda.close()


@pytest.fixture
async def service(lambda_env: Settings) -> AsyncIterator[JobService]:
    """The test's own view of the same backends: to submit jobs and read them back."""
    async with open_backends(lambda_env) as backends:
        yield JobService(
            backends.store,
            backends.queue,
            backends.bus,
            load_registry(lambda_env),
            lambda_env,
            transaction=backends.transaction,
        )


class Sqs:
    """boto3 on moto's SQS: what the Lambda service would receive, as event records."""

    def __init__(self, settings: Settings) -> None:
        self.client = boto3.client("sqs", endpoint_url=settings.sqs_endpoint_url, region_name=REGION)
        self.prefix = settings.sqs_queue_prefix

    def url(self, type: str, dead: bool = False) -> str:
        name = f"{self.prefix}{type}{'-dlq' if dead else ''}"
        return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])

    def receive(self, type: str, count: int, visibility: int = 30) -> list[dict[str, Any]]:
        """Receive ``count`` messages of ``type``'s queue (waiting up to the deadline) as event records."""
        url = self.url(type)
        arn = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE
        while len(messages) < count and time.monotonic() < deadline:
            response = self.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=count - len(messages),
                WaitTimeSeconds=1,
                VisibilityTimeout=visibility,
                MessageSystemAttributeNames=["All"],
            )
            messages += response.get("Messages", [])
        assert len(messages) == count, f"received {len(messages)} of {count} messages"
        return [record(m, arn["QueueArn"]) for m in messages]

    def counts(self, type: str, dead: bool = False) -> tuple[int, int]:
        """(visible, hidden) messages of a queue."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.client.get_queue_attributes(QueueUrl=self.url(type, dead), AttributeNames=names)
        return int(attrs["Attributes"][names[0]]), int(attrs["Attributes"][names[1]])


def record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """An SQS message as the Lambda service hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def by_job(records: list[dict[str, Any]], job: Job) -> dict[str, Any]:
    (found,) = [r for r in records if job.id in r["body"]]
    return found


async def invoke(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Call the handler as Lambda does: synchronously, on its own thread, with its own loop."""
    return await asyncio.to_thread(aws_lambda.handler, {"Records": records}, None)


async def test_batch_reports_only_the_failing_record(service: JobService, lambda_env: Settings) -> None:
    """Good, failing and malformed records: one batch item failure (the failing one), one completion."""
    sqs = Sqs(lambda_env)
    good = await submit(service, "flaky", {"fail_times": 0})
    failing = await submit(service, "flaky", {"fail_times": 5})
    sqs.client.send_message(QueueUrl=sqs.url("flaky"), MessageBody="not a jobpulse message")
    records = sqs.receive("flaky", 3)

    response = await invoke(records)

    assert response == {"batchItemFailures": [{"itemIdentifier": by_job(records, failing)["messageId"]}]}
    assert (await reload(service, good)).status is JobStatus.COMPLETED
    retried = await reload(service, failing)
    assert (retried.status, retried.attempts) == (JobStatus.PENDING, 1)
    assert aws_lambda.container().malformed_count == 1
    assert sqs.counts("flaky") == (0, 1)  # the good and the malformed deleted; the failing one hidden


async def test_jobs_run_on_lambda_are_in_the_stats_history(service: JobService, lambda_env: Settings) -> None:
    """Each invocation stores its container's per-minute counts: statsHistory counts the start and
    the completion of a job only Lambda ran (no worker process is there to count them)."""
    sqs = Sqs(lambda_env)
    await submit(service, "flaky", {"fail_times": 0})

    await invoke(sqs.receive("flaky", 1))

    buckets = await stats_history(service, None, 60, "flaky")
    assert (sum(b.started for b in buckets), sum(b.completed for b in buckets)) == (1, 1)


async def test_retried_record_reappears_at_run_at(service: JobService, lambda_env: Settings) -> None:
    """A record whose job goes back to PENDING is hidden until the job's runAt, then delivered again."""
    sqs = Sqs(lambda_env)
    job = await submit(service, "flaky", {"fail_times": 5, "retry_delay": 2})
    await invoke(sqs.receive("flaky", 1, visibility=60))
    run_at = (await reload(service, job)).run_at
    assert run_at is not None

    sqs.receive("flaky", 1)

    assert datetime.now(UTC) >= run_at


async def test_exhausted_record_is_dead_lettered_and_not_reported(
    service: JobService, lambda_env: Settings
) -> None:
    """A job out of attempts ends FAILED, its message in the dead-letter queue; Lambda is told success."""
    sqs = Sqs(lambda_env)
    job = await submit(service, "fail", {}, max_attempts=1)

    response = await invoke(sqs.receive("fail", 1))

    assert response == {"batchItemFailures": []}
    assert (await reload(service, job)).status is JobStatus.FAILED
    assert sqs.counts("fail") == (0, 0)
    assert sqs.counts("fail", dead=True) == (1, 0)


async def test_redelivered_record_of_a_running_job_does_nothing(
    service: JobService, lambda_env: Settings
) -> None:
    """A record for a job another worker runs under a live lease writes nothing and is kept for when it ends."""
    sqs = Sqs(lambda_env)
    job = await submit(service, "sleep", {"seconds": 60})
    running = (await service.claim(job.id, "elsewhere", 60)).job
    records = sqs.receive("sleep", 1)

    response = await invoke(records)

    # Reported as a failure, so Lambda leaves it to SQS, hidden until the lease ends: should the
    # worker holding the lease die, this message runs the job again.
    assert response == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert await reload(service, job) == running
    assert sqs.counts("sleep") == (0, 1)


async def test_heartbeat_keeps_the_record_hidden(service: JobService, lambda_env: Settings) -> None:
    """While a handler outlives its record's visibility, heartbeats extend it: nobody else receives it."""
    sqs = Sqs(lambda_env)
    # A warm container: building it (imports, backends) can take seconds on a loaded machine, and
    # this test is about the heartbeats of a running handler, not about a cold start.
    await submit(service, "noop", {"note": "warm-up"})
    assert (await invoke(sqs.receive("noop", 1))) == {"batchItemFailures": []}
    job = await submit(service, "sleep", {"seconds": 4, "steps": 8})
    # Hidden 3 s (as the settings' lease); the job takes 4 s, so only heartbeats keep it hidden. The
    # first heartbeat is due 1 s in: 2 s of slack.
    records = sqs.receive("sleep", 1, visibility=3)

    handling = asyncio.ensure_future(invoke(records))
    seen_meanwhile = 0
    while not handling.done():
        response = await asyncio.to_thread(
            sqs.client.receive_message, QueueUrl=sqs.url("sleep"), WaitTimeSeconds=1
        )
        seen_meanwhile += len(response.get("Messages", []))

    assert (await handling) == {"batchItemFailures": []}
    assert seen_meanwhile == 0
    assert (await reload(service, job)).status is JobStatus.COMPLETED


async def test_warm_invocations_reuse_the_container(service: JobService, lambda_env: Settings) -> None:
    """The backends, service and loop are built on the first invocation and kept for the next."""
    sqs = Sqs(lambda_env)
    for note in ("cold", "warm"):
        await submit(service, "noop", {"note": note})
    first, second = sqs.receive("noop", 2)

    await invoke([first])
    built = aws_lambda.container()
    await invoke([second])

    assert aws_lambda.container() is built
    assert built.invocations == 2


def test_an_invalid_setting_is_one_configuration_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A setting pydantic refuses fails the container with one line naming the variable, not a wall."""
    monkeypatch.setenv("JOBPULSE_VISIBILITY_TIMEOUT", "-1")
    aws_lambda.close()
    with pytest.raises(ConfigurationError) as caught:
        aws_lambda.container()
    assert str(caught.value) == (
        "invalid configuration: JOBPULSE_VISIBILITY_TIMEOUT='-1': should be greater than 0"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
