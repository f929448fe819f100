"""Several ``jobpulse`` processes on MongoDB (SecantusDB), SQS (moto) and Redis, as they run in production."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from pymongo import MongoClient

from tests.e2e.conftest import ADMIN, ALICE, Cluster
from tests.support.graphql import JOB_FIELDS, follow_job, gql_http, subscribe
from tests.support.process import JobpulseProcess
from tests.support.servers import RedisServer, free_port
from tests.support.tcp_proxy import TcpProxy

T = TypeVar("T")

SUBMIT = f"""
mutation($input: SubmitJobInput!) {{
  submitJob(input: $input) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message field }} }}
}}"""
EVENTS = f"""
subscription($id: ID, $type: String) {{
  jobEvents(jobId: $id, type: $type) {{ cursor kind message job {{ {JOB_FIELDS} }} }}
}}"""
UPDATED = f"subscription($id: ID!) {{ jobUpdated(id: $id) {{ {JOB_FIELDS} }} }}"
GET = "query($id: ID!) { job(id: $id) { status version progress } }"
STATS = "{ stats { queueDepth deadLetterDepth byType { type queueDepth deadLetterDepth } } }"
REDRIVE = 'mutation { redriveDeadLetters(type: "fail") }'
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { __typename ... on Job { status } } }"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
#: no wait in these tests should come near this; it turns a hang into a failure
DEADLINE = 60
#: how long a submission may take while SQS does not answer (the job waits for the sweeper)
SUBMIT_SECONDS = 10


def submit(process: JobpulseProcess, token: str, **job_input: Any) -> dict[str, Any]:
    """Submit one job; fail the test unless a Job comes back."""
    body = gql_http(process.url, token, SUBMIT, {"input": job_input})
    assert "errors" not in body, body
    job: dict[str, Any] = body["data"]["submitJob"]
    assert job["__typename"] == "Job", job
    return job


async def job_events(
    process: JobpulseProcess, token: str, job_id: str | None = None, type: str | None = None
) -> list[dict[str, Any]]:
    """``jobEvents`` (of one job, or of a type) from now on, until (and with) the first terminal event."""
    events: list[dict[str, Any]] = []
    variables = {"id": job_id, "type": type}
    async with aclosing(subscribe(process.url, token, EVENTS, variables)) as results:
        async for result in results:
            events.append(result["jobEvents"])
            if result["jobEvents"]["job"]["status"] in TERMINAL:
                break
    return events


def consecutive(versions: list[int]) -> bool:
    """True for ``n, n+1, n+2, …``: in order, none missing, none twice."""
    return bool(versions) and versions == list(range(versions[0], versions[0] + len(versions)))


async def wait_for(check: Callable[[], T], what: str) -> T:
    """Poll ``check()`` (in a thread) until it returns something truthy: a deadline, not a fixed sleep."""
    try:
        async with asyncio.timeout(DEADLINE):
            while True:
                if value := await asyncio.to_thread(check):
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def journal_lines(path: Path) -> list[list[str]]:
    """The sleep job's journal: ``[word, attempt, pid]`` per line."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def stored_job(env: dict[str, str], job_id: str) -> dict[str, Any]:
    """The job's document as MongoDB holds it (fields the API does not show, like ``enqueued_at``)."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        env["JOBPULSE_MONGODB_URL"], serverSelectionTimeoutMS=5000
    )
    try:
        doc = client[env["JOBPULSE_MONGODB_DATABASE"]]["jobs"].find_one({"_id": job_id})
    finally:
        client.close()
    assert doc is not None
    return doc


def sqs_client(env: dict[str, str]) -> Any:
    """A plain boto3 SQS client on the test's moto, to do what no jobpulse process would."""
    return boto3.client("sqs", endpoint_url=env["JOBPULSE_SQS_ENDPOINT_URL"], region_name="us-east-1")


def messages_held(sqs: Any, queue_url: str) -> int:
    """Messages the queue holds: visible, in flight or delayed."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def visible_messages(sqs: Any, queue_url: str) -> int:
    """Messages a receive would get now."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def job_version(process: JobpulseProcess, job_id: str) -> int:
    """The job's version as stored now (read over HTTP: it needs no Redis)."""
    version: int = gql_http(process.url, ALICE, GET, {"id": job_id})["data"]["job"]["version"]
    return version


def fail_queue_depths(process: JobpulseProcess) -> tuple[int, int, int]:
    """``(queueDepth, deadLetterDepth, the fail type's deadLetterDepth)`` from ``stats``, as the admin."""
    body = gql_http(process.url, ADMIN, STATS)
    assert "errors" not in body, body
    stats = body["data"]["stats"]
    [fail] = [t for t in stats["byType"] if t["type"] == "fail"]
    return stats["queueDepth"], stats["deadLetterDepth"], fail["deadLetterDepth"]


async def readiness(process: JobpulseProcess) -> tuple[int, dict[str, Any]]:
    """``/readyz``'s status code and its report per backend."""
    response = await asyncio.to_thread(httpx.get, f"{process.url}/readyz", timeout=10)
    body: dict[str, Any] = response.json()
    return response.status_code, body["backends"]


async def test_subscriber_on_one_api_sees_every_change_made_through_another(cluster: Cluster) -> None:
    """A job submitted through API 2 and run by either worker reaches a subscriber on API 1, change by change."""
    api_1, api_2 = cluster.api(), cluster.api()
    cluster.start(api_1, api_2, cluster.worker("--types", "sleep"), cluster.worker("--types", "sleep"))
    job = submit(api_2, ALICE, type="sleep", payload={"seconds": 1.5, "steps": 3})
    async with asyncio.timeout(DEADLINE):
        updates, events = await asyncio.gather(
            follow_job(api_1.url, ALICE, job["id"]), job_events(api_1, ALICE, job["id"])
        )
    # jobUpdated: the snapshot (taken before the job could end), then every change, in order.
    assert updates[0]["status"] not in TERMINAL
    assert consecutive([u["version"] for u in updates]), updates
    final = updates[-1]
    assert (final["status"], final["attempts"]) == ("COMPLETED", 1)
    assert final["result"] == {"slept": 1.5, "attempt": 1}
    # jobEvents: every event from the subscription on, ending with the same COMPLETED version.
    assert consecutive([e["job"]["version"] for e in events]), events
    assert events[-1]["kind"] == "COMPLETED" and events[-1]["job"]["version"] == final["version"]
    assert [e["kind"] for e in events].count("PROGRESS") >= 1


async def test_worker_killed_mid_job_the_other_finishes_it_once(cluster: Cluster, tmp_path: Path) -> None:
    """kill -9 of the worker running a job: after the visibility timeout the other worker runs it, once."""
    timeout = {"JOBPULSE_VISIBILITY_TIMEOUT": "2"}
    api = cluster.api(**timeout)
    workers = [cluster.worker("--types", "sleep", "--concurrency", "1", **timeout) for _ in range(2)]
    cluster.start(api, *workers)
    journal = tmp_path / "journal"
    job = submit(api, ALICE, type="sleep", payload={"seconds": 1, "steps": 2, "journal": str(journal)})
    # Given the job started on one of the workers,
    started = await wait_for(lambda: journal_lines(journal), "the first start")
    victim = next(w for w in workers if w.proc is not None and str(w.proc.pid) == started[0][2])
    survivor = next(w for w in workers if w is not victim)
    # when that worker is killed mid-job,
    victim.kill()
    # then the job completes on the other one, on its second attempt.
    async with asyncio.timeout(DEADLINE):
        updates = await follow_job(api.url, ALICE, job["id"])
    final = updates[-1]
    assert (final["status"], final["attempts"]) == ("COMPLETED", 2)
    assert final["result"] == {"slept": 1, "attempt": 2}
    assert survivor.proc is not None
    assert journal_lines(journal) == [
        ["start", "1", started[0][2]],
        ["start", "2", str(survivor.proc.pid)],
        ["done", "2", str(survivor.proc.pid)],
    ]


@pytest.mark.parametrize("outage", ["refused", "hanging"])
async def test_job_submitted_while_sqs_is_down_is_sent_by_the_sweeper(
    sqs_proxy: TcpProxy, cluster: Cluster, distributed_env: dict[str, str], tmp_path: Path, outage: str
) -> None:
    """With SQS unreachable the API still takes the job; once SQS is back the sweeper sends it and it runs once."""
    env = {
        "JOBPULSE_SQS_ENDPOINT_URL": sqs_proxy.url,
        "JOBPULSE_SWEEP_INTERVAL_SECONDS": "0.5",
        "JOBPULSE_SWEEP_GRACE_SECONDS": "1",
    }
    api = cluster.api(**env)
    worker = cluster.worker("--types", "sleep", **env)
    cluster.start(api, worker)
    journal = tmp_path / "journal"
    # Given SQS is unreachable for every process,
    sqs_proxy.cut(hang=outage == "hanging")
    # a submission is still answered, in good time: the job is stored PENDING, not yet sent.
    asked = time.monotonic()
    job = submit(api, ALICE, type="sleep", payload={"seconds": 0, "journal": str(journal)})
    assert time.monotonic() - asked < SUBMIT_SECONDS
    assert job["status"] == "PENDING"
    assert stored_job(distributed_env, job["id"])["enqueued_at"] is None
    assert sqs_proxy.refused > 0
    # Once SQS is back, the sweeper sends it and the worker runs it, once.
    sqs_proxy.restore()
    async with asyncio.timeout(DEADLINE):
        updates = await follow_job(api.url, ALICE, job["id"])
    assert (updates[-1]["status"], updates[-1]["attempts"]) == ("COMPLETED", 1)
    assert worker.proc is not None
    pid = str(worker.proc.pid)
    assert journal_lines(journal) == [["start", "1", pid], ["done", "1", pid]]


async def test_poison_messages_do_not_stop_the_worker(
    cluster: Cluster, distributed_env: dict[str, str]
) -> None:
    """Garbage sent straight to a job type's queue is dropped, and a job submitted after it completes."""
    api, worker = cluster.api(), cluster.worker("--types", "noop")
    cluster.start(api, worker)
    sqs = sqs_client(distributed_env)
    queue_url = sqs.get_queue_url(QueueName=distributed_env["JOBPULSE_SQS_QUEUE_PREFIX"] + "noop")["QueueUrl"]
    poison = [
        "not json at all",
        "[1, 2, 3]",
        "{}",
        '{"job_id": 42, "type": "noop"}',
        '{"job_id": "00000000-0000-7000-8000-000000000000", "type": "noop"}',
        '{"job_id": "00000000-0000-7000-8000-000000000001", "type": "another-type"}',
        "\u0000\ufffd binary-ish",
    ]
    for body in poison:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    await wait_for(lambda: messages_held(sqs, queue_url) == 0, "the worker to drop the poison messages")
    job = submit(api, ALICE, type="noop", payload={"note": "after the poison"})
    async with asyncio.timeout(DEADLINE):
        updates = await follow_job(api.url, ALICE, job["id"])
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["result"] == {"ok": True, "note": "after the poison"}
    assert worker.proc is not None and worker.proc.poll() is None


async def test_subscriptions_resume_after_a_redis_restart_without_a_gap(
    own_redis: RedisServer, cluster: Cluster
) -> None:
    """Redis restarted mid-job: open subscriptions get every version once, the ones made meanwhile too."""
    env = {"JOBPULSE_REDIS_URL": own_redis.url}
    api = cluster.api(**env)
    cluster.start(api, cluster.worker("--types", "sleep", **env))
    job = submit(api, ALICE, type="sleep", payload={"seconds": 2.4, "steps": 6})
    outage_over = asyncio.Event()
    changed_meanwhile: list[int] = []

    async def restart_redis(seen_version: int) -> None:
        # Given Redis goes down while the job runs, and the job changes meanwhile,
        await asyncio.to_thread(own_redis.stop)
        version = await wait_for(
            lambda: (v := job_version(api, job["id"])) > seen_version and v, "a change while Redis is down"
        )
        changed_meanwhile.append(version)
        # when Redis comes back,
        await asyncio.to_thread(own_redis.start)
        outage_over.set()

    async def updates() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with aclosing(subscribe(api.url, ALICE, UPDATED, {"id": job["id"]})) as results:
            async for result in results:
                seen.append(update := result["jobUpdated"])
                if update["status"] == "PROCESSING" and not changed_meanwhile and update["progress"] > 0:
                    await restart_redis(update["version"])
        return seen

    async with asyncio.timeout(DEADLINE):
        updated, events, feed = await asyncio.gather(
            updates(), job_events(api, ALICE, job["id"]), job_events(api, ALICE, type="sleep")
        )
    # then every subscription got every version once, in order, through COMPLETED.
    assert outage_over.is_set()
    streams = [[u["version"] for u in updated], *([e["job"]["version"] for e in s] for s in (events, feed))]
    for versions in streams:
        assert consecutive(versions), versions
        assert changed_meanwhile[0] in versions
        assert versions[-1] == updated[-1]["version"]
    assert updated[-1]["status"] == "COMPLETED"
    assert events[-1]["kind"] == feed[-1]["kind"] == "COMPLETED"
    assert httpx.get(f"{api.url}/readyz", timeout=5).status_code == 200


async def test_failed_job_is_dead_lettered_and_redriven(cluster: Cluster) -> None:
    """A job that always fails ends FAILED in the dead-letter queue; redriveDeadLetters runs it again."""
    api, worker = cluster.api(), cluster.worker("--types", "fail")
    cluster.start(api, worker)
    job = submit(api, ALICE, type="fail", payload={"message": "no luck"})
    async with asyncio.timeout(DEADLINE):
        failed = (await follow_job(api.url, ALICE, job["id"]))[-1]
    assert (failed["status"], failed["attempts"]) == ("FAILED", 2)
    assert failed["error"] == "RuntimeError: no luck"
    # The message reaches the dead-letter queue right after the FAILED write.
    await wait_for(lambda: fail_queue_depths(api) == (0, 1, 1), "the message in the dead-letter queue")
    # Given no worker runs, a redrive brings the job back to PENDING with its message queued again,
    assert worker.terminate() == 0
    assert gql_http(api.url, ADMIN, REDRIVE) == {"data": {"redriveDeadLetters": 1}}
    redriven = gql_http(api.url, ALICE, GET, {"id": job["id"]})["data"]["job"]
    assert redriven["status"] == "PENDING"
    assert fail_queue_depths(api) == (1, 0, 0)
    # and once a worker is back, it runs again (and, failing again, is dead-lettered again).
    worker.start()
    async with asyncio.timeout(DEADLINE):
        again = await job_events(api, ALICE, job["id"])
    assert [e["kind"] for e in again].count("STARTED") == 2
    assert (again[-1]["kind"], again[-1]["job"]["attempts"]) == ("FAILED", 2)
    await wait_for(lambda: fail_queue_depths(api) == (0, 1, 1), "the message in the dead-letter queue again")


async def test_mixed_mode_mongodb_and_sqs_with_in_process_events(cluster: Cluster) -> None:
    """One `jobpulse serve` on MongoDB and SQS with in-process events completes a job and says so on /readyz."""
    server = cluster.serve(JOBPULSE_REDIS_URL=None)
    cluster.start(server)
    status, backends = await readiness(server)
    assert status == 200
    assert {name: (b["kind"], b["ok"]) for name, b in backends.items()} == {
        "store": ("mongodb", True),
        "queue": ("sqs", True),
        "bus": ("local", True),
    }
    job = submit(server, ALICE, type="data_analysis", payload={"data": [3, 1, 2]})
    async with asyncio.timeout(DEADLINE):
        updates = await follow_job(server.url, ALICE, job["id"])
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["result"]["median"] == 2


async def test_readyz_is_503_while_redis_is_down(own_redis: RedisServer, cluster: Cluster) -> None:
    """/readyz names each backend's kind, and answers 503 (bus not ok) while Redis is stopped."""
    api = cluster.api(JOBPULSE_REDIS_URL=own_redis.url)
    cluster.start(api)
    status, backends = await readiness(api)
    assert status == 200
    assert {name: b["kind"] for name, b in backends.items()} == {
        "store": "mongodb",
        "queue": "sqs",
        "bus": "redis",
    }
    own_redis.stop()
    status, backends = await readiness(api)
    assert status == 503
    assert (backends["store"]["ok"], backends["queue"]["ok"], backends["bus"]["ok"]) == (True, True, False)
    own_redis.start()
    await wait_for(lambda: httpx.get(f"{api.url}/readyz", timeout=10).status_code == 200, "ready again")


async def test_cancel_through_one_api_stops_the_handler_in_a_worker(cluster: Cluster) -> None:
    """cancelJob through API 2 stops a handler running in a worker process; API 1's subscriber sees CANCELLED."""
    api_1, api_2 = cluster.api(), cluster.api()
    cluster.start(api_1, api_2, cluster.worker("--types", "sleep"))
    job = submit(api_1, ALICE, type="sleep", payload={"seconds": 120, "steps": 120})
    statuses: list[str] = []
    async with asyncio.timeout(DEADLINE):
        async with aclosing(subscribe(api_1.url, ALICE, UPDATED, {"id": job["id"]})) as results:
            async for result in results:
                statuses.append(update := result["jobUpdated"]["status"])
                if update == "PROCESSING" and statuses.count("PROCESSING") == 1:
                    answer = gql_http(api_2.url, ALICE, CANCEL, {"id": job["id"]})["data"]["cancelJob"]
                    assert answer == {"__typename": "Job", "status": "PROCESSING"}
    assert statuses[-1] == "CANCELLED"
    final = gql_http(api_2.url, ALICE, GET, {"id": job["id"]})["data"]["job"]
    assert final["status"] == "CANCELLED" and final["progress"] < 100


async def test_idempotency_key_holds_across_api_processes(cluster: Cluster) -> None:
    """Concurrent submissions with one idempotency key, through two API processes, make one job."""
    apis = cluster.api(), cluster.api()
    cluster.start(*apis)
    job_input = {"type": "noop", "payload": {}, "idempotencyKey": "just-once", "delaySeconds": 3600}
    jobs = await asyncio.gather(
        *(asyncio.to_thread(submit, apis[i % 2], ALICE, **job_input) for i in range(8))
    )
    assert len({job["id"] for job in jobs}) == 1
    for api in apis:
        assert gql_http(api.url, ALICE, "{ jobs { totalCount } }")["data"]["jobs"]["totalCount"] == 1


async def test_concurrent_submissions_each_run_exactly_once(
    cluster: Cluster, distributed_env: dict[str, str], tmp_path: Path
) -> None:
    """Submissions made at once through two APIs (their events, sends and marks go out in
    batches): every job is marked sent, and runs exactly once."""
    apis = cluster.api(), cluster.api()
    cluster.start(*apis, cluster.worker("--types", "sleep", "--concurrency", "8"))
    journals = [tmp_path / f"journal-{n}" for n in range(24)]
    jobs = await asyncio.gather(
        *(
            asyncio.to_thread(
                submit, apis[n % 2], ALICE, type="sleep", payload={"seconds": 0, "journal": str(journal)}
            )
            for n, journal in enumerate(journals)
        )
    )
    assert len({job["id"] for job in jobs}) == len(journals)

    def all_completed() -> bool:
        return all(
            gql_http(apis[0].url, ALICE, GET, {"id": job["id"]})["data"]["job"]["status"] == "COMPLETED"
            for job in jobs
        )

    await wait_for(all_completed, "every job to complete")
    for job, journal in zip(jobs, journals, strict=True):
        assert [line[:2] for line in journal_lines(journal)] == [["start", "1"], ["done", "1"]]
        assert stored_job(distributed_env, job["id"])["enqueued_at"] is not None


async def test_worker_cut_off_from_sqs_then_killed_loses_no_job(
    sqs_proxy: TcpProxy, cluster: Cluster, distributed_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker that loses SQS mid-job (its message reappears elsewhere) and then dies: the job still completes."""
    timeout = {"JOBPULSE_VISIBILITY_TIMEOUT": "1"}
    api = cluster.api(**timeout)
    cut_off = cluster.worker("--types", "hold", "--concurrency", "1", **timeout)
    cut_off.env["JOBPULSE_SQS_ENDPOINT_URL"] = sqs_proxy.url
    cluster.start(api, cut_off)
    journal, until = tmp_path / "journal", tmp_path / "until"
    job = submit(api, ALICE, type="hold", payload={"until": str(until), "journal": str(journal)})
    await wait_for(lambda: journal_lines(journal), "the first start")
    sqs = sqs_client(distributed_env)
    queue_url = sqs.get_queue_url(QueueName=distributed_env["JOBPULSE_SQS_QUEUE_PREFIX"] + "hold")["QueueUrl"]
    # Given the running worker loses SQS: its heartbeats keep the lease, but not the message hidden;
    sqs_proxy.cut()
    await wait_for(lambda: visible_messages(sqs, queue_url) == 1, "the message to reappear")
    # another worker receives it while the lease still holds,
    cluster.start(cluster.worker("--types", "hold", "--concurrency", "1", **timeout))
    await wait_for(lambda: visible_messages(sqs, queue_url) == 0, "the other worker to take the message")
    # when the running worker dies,
    killed_at = datetime.now(UTC)
    cut_off.kill()
    until.touch()
    # then the job runs again, on the other worker, and completes; and only after the first run died
    # (its heartbeats kept the lease while SQS was out of reach).
    async with asyncio.timeout(DEADLINE):
        updates = await follow_job(api.url, ALICE, job["id"])
    assert (updates[-1]["status"], updates[-1]["attempts"]) == ("COMPLETED", 2)
    assert [line[:2] for line in journal_lines(journal)] == [["start", "1"], ["start", "2"], ["done", "2"]]
    started = gql_http(api.url, ALICE, "query($id: ID!) { job(id: $id) { startedAt } }", {"id": job["id"]})
    assert datetime.fromisoformat(started["data"]["job"]["startedAt"]) > killed_at


async def test_a_worker_serves_the_metrics_of_the_jobs_it_runs(cluster: Cluster) -> None:
    """With JOBPULSE_WORKER_METRICS_PORT, `jobpulse worker` serves /metrics with the completions and
    run times of its jobs (counted where jobs run: the API process never sees them) and /healthz;
    SIGTERM still stops it gracefully."""
    port = free_port()
    api = cluster.api()
    worker = cluster.worker("--types", "noop", JOBPULSE_WORKER_METRICS_PORT=str(port))
    cluster.start(api, worker)
    job = submit(api, ALICE, type="noop", payload={})
    async with asyncio.timeout(DEADLINE):
        assert (await follow_job(api.url, ALICE, job["id"]))[-1]["status"] == "COMPLETED"

    worker_metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    api_metrics = httpx.get(f"{api.url}/metrics", timeout=5).text
    assert 'jobpulse_jobs_completed_total{type="noop"} 1.0' in worker_metrics
    assert 'jobpulse_job_run_seconds_count{type="noop"} 1.0' in worker_metrics
    assert 'jobpulse_jobs_completed_total{type="noop"}' not in api_metrics
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"
    assert worker.terminate() == 0
