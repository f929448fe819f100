"""Figure 9: distributed mode (MongoDB store, SQS queue, Redis bus) against raw loops on the same servers.

The servers are stand-ins: moto's SQS server and SecantusDB (a MongoDB wire-protocol server in
Python) are far slower than SQS and MongoDB, so only the ratios mean anything: how much of what
the endpoint can do jobpulse gets. Data stays small (hundreds of jobs).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.fig_http import SUBMIT
from bench.procs import TOKEN, CpuMeter, MongoServer, MotoServer, RedisServer, jobpulse, scratch_dir
from bench.report import Row
from bench.seed import submit_jobs
from bench.wrk import run_wrk

__all__ = ["figure9"]

JOBS_9 = 600
SUBMIT_SECONDS = 10
SUBMIT_CONNECTIONS = 16
RAW_INSERTS = 600


def _raw_sqs_rate(endpoint: str, messages: int) -> float:
    """Messages/s of a plain receive(10) + DeleteMessageBatch loop, after filling a fresh queue."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"bench-raw-{time.time_ns()}")["QueueUrl"]
    body = '{"job_id": "01a2119b-b975-7e4f-a5e0-f35495280ae2", "type": "noop"}'
    for _ in range(0, messages, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": body} for n in range(10)])
    received = 0
    started = time.perf_counter()
    while received < messages:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if batch:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
            )
        received += len(batch)
    return received / (time.perf_counter() - started)


def _raw_insert_rate(url: str, count: int) -> float:
    """Documents/s of a plain ``insert_one`` loop, job-sized documents, the store's write concern."""
    from pymongo import MongoClient, WriteConcern

    from core.backends.codec import job_to_dict
    from core.models import Job, new_job_id

    client: MongoClient[dict[str, object]] = MongoClient(url)
    jobs = client.get_database("bench_raw", write_concern=WriteConcern("majority", j=True)).get_collection(
        "jobs"
    )
    docs = []
    for _ in range(count):
        job = Job(id=new_job_id(), type="noop", owner="bench", payload={"note": "bench"})
        docs.append({**job_to_dict(job), "_id": job.id, "payload": job.payload})
    started = time.perf_counter()
    for doc in docs:
        jobs.insert_one(doc)
    rate = count / (time.perf_counter() - started)
    client.close()
    return rate


def _pid(server: MongoServer | MotoServer | RedisServer) -> int:
    assert server.process is not None
    return server.process.pid


def _stand_ins(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {cpu[name]:.0f}%" for name in ("secantusdb", "moto", "redis"))


def _completed(url: str, database: str) -> int:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url)
    try:
        return client[database]["jobs"].count_documents({"status": "COMPLETED"})
    finally:
        client.close()


def _all_types_rate(env: dict[str, str], mongo: MongoServer, data: Path, seconds: float = 15) -> float:
    """Jobs/s of a worker serving every job type (the default) while only ``noop`` has work."""
    database = env["JOBPULSE_MONGODB_DATABASE"]
    submit_jobs(data, 200, extra_env=env)
    worker, _ = jobpulse("worker", "fig9-worker-all-types", data, "--concurrency", "32", **env)
    try:
        time.sleep(3)  # start-up
        start, started = _completed(mongo.url, database), time.monotonic()
        time.sleep(seconds)
        return (_completed(mongo.url, database) - start) / (time.monotonic() - started)
    finally:
        worker.stop()


def _drain_rate(
    env: dict[str, str], mongo: MongoServer, data: Path, stand_ins: dict[str, int]
) -> tuple[float, dict[str, float]]:
    submit_jobs(data, JOBS_9, extra_env=env)
    worker, _ = jobpulse("worker", "fig9-worker", data, "--concurrency", "32", "--types", "noop", **env)

    try:
        marks: dict[str, tuple[float, int]] = {}
        meter = CpuMeter(worker=worker.pid, **stand_ins)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "high" not in marks:
            done = _completed(mongo.url, env["JOBPULSE_MONGODB_DATABASE"])
            now = time.monotonic()
            if "low" not in marks and done >= JOBS_9 * 0.1:
                marks["low"] = (now, done)
                meter.start()
            if done >= JOBS_9 * 0.9:
                marks["high"] = (now, done)
                meter.stop()
            time.sleep(0.25)
        if "high" not in marks:
            raise TimeoutError(f"worker did not finish {JOBS_9} jobs:\n{worker.output()}")
    finally:
        worker.stop()
    (t0, n0), (t1, n1) = marks["low"], marks["high"]
    return (n1 - n0) / (t1 - t0), meter.percent


def figure9() -> list[Row]:
    servers = [MotoServer(), MongoServer(), RedisServer()]
    for server in servers:
        server.start()
    moto, mongo, redis = servers
    try:
        env = {
            "JOBPULSE_MONGODB_URL": mongo.url,
            "JOBPULSE_MONGODB_DATABASE": "bench",
            "JOBPULSE_SQS_ENDPOINT_URL": moto.endpoint,
            "JOBPULSE_SQS_QUEUE_PREFIX": "bench-",
            "JOBPULSE_REDIS_URL": redis.url,
        }
        with scratch_dir("fig9") as data:
            stand_ins = {"secantusdb": _pid(mongo), "moto": _pid(moto), "redis": _pid(redis)}
            worker_rate, worker_cpu = _drain_rate(env, mongo, data, stand_ins)
            all_types_rate = _all_types_rate(env, mongo, data)
            raw_sqs = _raw_sqs_rate(moto.endpoint, JOBS_9)
            server, url = jobpulse("api", "fig9-api", data, **env)
            try:
                others = CpuMeter(**stand_ins).start()
                submit = run_wrk(
                    f"{url}/graphql",
                    SUBMIT,
                    connections=SUBMIT_CONNECTIONS,
                    seconds=SUBMIT_SECONDS,
                    server_pid=server.pid,
                    token=TOKEN,
                    marker='"status":"PENDING"',
                )
                submit_others = others.stop()
            finally:
                server.stop()
            if not submit.ok:
                raise RuntimeError(f"submits failed: {submit.sample}")
            raw_insert = _raw_insert_rate(mongo.url, RAW_INSERTS)
    finally:
        for server in servers:
            server.close()
    worker_ratio, submit_ratio = worker_rate / raw_sqs, submit.rate / raw_insert
    return [
        Row(
            "9a",
            "distributed worker (`--types noop --concurrency 32`, SQS + MongoDB + Redis): no-op jobs/s",
            f"{worker_rate:,.0f} jobs/s = **{worker_ratio:.2f}×**",
            f"raw receive(10) + DeleteMessageBatch loop, same moto SQS: {raw_sqs:,.0f} msgs/s",
            "≥ 0.8×",
            worker_ratio >= 0.8,
            f"worker {worker_cpu['worker']:.0f}%, {_stand_ins(worker_cpu)} "
            f"(machine {worker_cpu['machine']:.0f}% "
            "of 200%); stand-ins: moto (SQS) and SecantusDB (MongoDB), the ratio is the figure. "
            "A worker serving every type (the default) while only `noop` has work: "
            f"{all_types_rate:.1f} jobs/s",
        ),
        Row(
            "9b",
            f"distributed `submitJob` at {SUBMIT_CONNECTIONS} clients (`jobpulse api`)",
            f"{submit.rate:,.0f} jobs/s = **{submit_ratio:.2f}×** (p99 {submit.p99_ms:.0f} ms)",
            f"raw `insert_one` loop (w=majority, j=true), same SecantusDB: {raw_insert:,.0f} docs/s",
            "≥ 0.6×",
            submit_ratio >= 0.6,
            f"server {submit.cpu['server']:.0f}%, wrk {submit.cpu['wrk']:.0f}%, {_stand_ins(submit_others)} "
            f"(machine {submit.cpu['machine']:.0f}% of 200%)",
        ),
    ]
