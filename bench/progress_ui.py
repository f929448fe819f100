"""Figure 5 as a progress UI uses it, the client (its own process): submit, then watch that one job.

``python -m bench.progress_ui --url http://127.0.0.1:PORT --rate 200 --seconds 20 --warmup 3``

Open loop: ``data_analysis`` submits go out on a schedule (``rate`` a second) over a pool of
keep-alive HTTP connections written out by hand (as ``bench/latency.py``); as soon as a submit's
answer arrives, the client subscribes ``jobUpdated(id)`` for that job on one of ``SOCKETS``
websockets (round robin), with the selection the README's tour shows a UI. For each job, the delay
is the arrival of the message with status COMPLETED minus the arrival of the submit's answer.
Each job's messages are checked: versions strictly rising, progress never going back, the last
one COMPLETED, then ``complete``. Queue wait (``startedAt − createdAt``) is reported for the
first and the last second of the measured part, so a growing backlog shows. Jobs submitted
during the warm-up are not counted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from datetime import datetime

import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench.httpload import exchange, raw_post, run_fast
from bench.procs import TOKEN
from bench.report import percentile

#: keep-alive HTTP connections submitting, and websockets watching (round robin)
CONNECTIONS = 16
SOCKETS = 16
#: a progress UI's selection (README, "A five-minute tour"), plus what the checks need
WATCH = (
    "subscription Watch($id: ID!) { jobUpdated(id: $id) { id version status progress progressMessage "
    "attempts result error createdAt startedAt } }"
)
SUBMIT = {
    "query": "mutation Submit($input: SubmitJobInput!) { submitJob(input: $input) "
    "{ ... on Job { id status } ... on UserError { code message } } }",
    "variables": {"input": {"type": "data_analysis", "payload": {"data": [3, 1, 4, 1, 5, 9, 2, 6]}}},
}


class Watch:
    """One job's subscription as the client saw it."""

    __slots__ = ("completed", "counted", "done", "problem", "progress", "queue_wait", "returned", "version")

    def __init__(self, returned: float, counted: bool) -> None:
        self.returned, self.counted = returned, counted
        self.completed: float | None = None
        self.queue_wait: float | None = None
        self.version, self.progress = 0, -1.0
        self.done = False
        self.problem: str | None = None

    def next(self, job: dict[str, object], now: float) -> None:
        version, progress = int(job["version"]), float(job["progress"])  # type: ignore[arg-type]
        if version <= self.version:
            self.problem = f"version {version} after {self.version}"
        if progress < self.progress and job["status"] == "PROCESSING":
            self.problem = f"progress {progress} after {self.progress}"
        self.version, self.progress = version, progress
        if job["status"] == "COMPLETED" and self.completed is None:
            self.completed = now
            if job["startedAt"] and job["createdAt"]:
                started = datetime.fromisoformat(str(job["startedAt"]))
                created = datetime.fromisoformat(str(job["createdAt"]))
                self.queue_wait = (started - created).total_seconds()
        elif job["status"] in ("FAILED", "CANCELLED"):
            self.problem = f"ended {job['status']}"


async def _socket(url: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await ws.send(
        orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {TOKEN}"}}).decode()
    )
    ack = orjson.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    return ws


async def run(args: argparse.Namespace) -> dict[str, object]:
    watches: dict[str, Watch] = {}  # subscription id (= job id) → what was seen
    errors: list[str] = []
    submit_ms: list[float] = []
    sockets = [await _socket(args.url.replace("http", "ws") + "/graphql") for _ in range(SOCKETS)]
    turn = itertools.cycle(sockets)

    async def listen(ws: ClientConnection) -> None:
        async for text in ws:
            now = time.monotonic()
            message = orjson.loads(text)
            kind, job_id = message.get("type"), message.get("id")
            watch = watches.get(job_id) if job_id is not None else None
            if kind == "next" and watch is not None:
                payload = message["payload"]
                if payload.get("errors"):
                    errors.append(str(payload["errors"])[:300])
                    continue
                watch.next(payload["data"]["jobUpdated"], now)
            elif kind == "complete" and watch is not None:
                watch.done = True
            elif kind == "error" or kind not in ("next", "complete", "ping", "pong"):
                errors.append(str(message)[:300])

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    host, port = args.url.removeprefix("http://").split(":")
    request = raw_post(f"{args.url}/graphql", orjson.dumps(SUBMIT), TOKEN)
    due: asyncio.Queue[bool | None] = asyncio.Queue()

    async def submit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counted: bool) -> None:
        started = time.monotonic()
        answer = orjson.loads((await exchange(reader, writer, request))[1])
        now = time.monotonic()
        job_id = str(answer["data"]["submitJob"]["id"])
        watches[job_id] = Watch(now, counted)
        if counted:
            submit_ms.append((now - started) * 1000)
        # The UI subscribes at once; the subscription's id is the job's, to match its messages.
        await next(turn).send(
            orjson.dumps(
                {"id": job_id, "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": job_id}}}
            ).decode()
        )

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (counted := await due.get()) is not None:
            await submit(reader, writer, counted)
        writer.close()

    pool = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    begin = time.monotonic()
    total = int(args.rate * args.seconds)
    for n in range(total):
        delay = begin + n / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(n >= args.rate * args.warmup)
    for _ in pool:
        due.put_nowait(None)
    await asyncio.gather(*pool)
    elapsed = time.monotonic() - begin
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline and any(not w.done for w in watches.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    drained = time.monotonic() - begin - elapsed
    for task in listeners:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    counted = sorted((w for w in watches.values() if w.counted), key=lambda w: w.returned)
    seen = [w for w in counted if w.completed is not None]
    delays = [max(0.0, w.completed - w.returned) * 1000 for w in seen if w.completed is not None]

    def waits(first: bool) -> float:
        if not seen:
            return float("nan")
        edge = seen[0].returned + 1 if first else seen[-1].returned - 1
        chosen = [w.queue_wait for w in seen if (w.returned <= edge if first else w.returned >= edge)]
        return 1000 * sum(x for x in chosen if x is not None) / max(1, len(chosen))

    return {
        "delays_ms": delays,
        "missing": len(counted) - len(seen),
        "not_completed_stream": sum(1 for w in counted if not w.done),
        "problems": [w.problem for w in counted if w.problem][:5],
        "problem_count": sum(1 for w in counted if w.problem),
        "errors": errors[:5],
        "error_count": len(errors),
        "jobs": len(counted),
        "submitted": total,
        "rate": total / elapsed,
        "queue_wait_first_ms": waits(True),
        "queue_wait_last_ms": waits(False),
        "drain_seconds": drained,
        "submit_p50_ms": percentile(submit_ms, 50),
        "submit_p99_ms": percentile(submit_ms, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--drain", type=float, default=30, help="seconds to wait for the last jobs")
    args = parser.parse_args()
    print(json.dumps(run_fast(lambda: run(args))))


if __name__ == "__main__":
    main()
