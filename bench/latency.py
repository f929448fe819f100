"""Figure 5's client, its own process: submit at a steady rate, watch for COMPLETED on a subscription.

``python -m bench.latency --url http://127.0.0.1:PORT --rate 200 --seconds 15 --warmup 3``

One websocket holds ``jobEvents(type: "noop")`` (admin: every job's events); submits go over HTTP
on a schedule, over a pool of keep-alive connections written out by hand (httpx costs more CPU per
request than the server at this rate); a slow answer delays a submit only if all are busy.
For each job, the delay
is the arrival of its COMPLETED event minus the moment its ``submitJob`` answer arrived (0 when
the event came first). Jobs submitted during the warm-up are not counted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import orjson
from websockets.asyncio.client import connect

from bench.fig_http import SUBMIT
from bench.httpload import exchange, raw_post
from bench.procs import TOKEN
from bench.report import percentile

#: keep-alive HTTP connections submitting (a submit waits for a free one only if all are busy)
CONNECTIONS = 16
WATCH = 'subscription { jobEvents(type: "noop") { kind job { id } } }'


async def run(args: argparse.Namespace) -> dict[str, object]:
    returned: dict[str, float] = {}
    completed: dict[str, float] = {}
    submit_ms: list[float] = []
    ws = await connect(args.url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(
        orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {TOKEN}"}}).decode()
    )
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": WATCH}}).decode())

    async def listen() -> None:
        async for text in ws:
            message = orjson.loads(text)
            if message.get("type") != "next":
                raise RuntimeError(f"subscription message {message}")
            event = message["payload"]["data"]["jobEvents"]
            if event["kind"] == "COMPLETED":
                completed.setdefault(event["job"]["id"], time.monotonic())

    listener = asyncio.create_task(listen())
    host, port = args.url.removeprefix("http://").split(":")
    request = raw_post(f"{args.url}/graphql", orjson.dumps(SUBMIT), TOKEN)
    due: asyncio.Queue[bool | None] = asyncio.Queue()

    async def submit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counted: bool) -> str:
        started = time.monotonic()
        answer = orjson.loads((await exchange(reader, writer, request))[1])
        job_id = str(answer["data"]["submitJob"]["id"])
        now = time.monotonic()
        if counted:
            returned[job_id] = now
            submit_ms.append((now - started) * 1000)
        return job_id

    async def connection() -> None:
        # One keep-alive connection (as a pooled HTTP client keeps): takes the next due submit.
        reader, writer = await asyncio.open_connection(host, int(port))
        while (counted := await due.get()) is not None:
            await submit(reader, writer, counted)
        writer.close()

    # The subscription is live once a job submitted after it shows up completed.
    reader, writer = await asyncio.open_connection(host, int(port))
    probe = await submit(reader, writer, False)
    writer.close()
    while probe not in completed:  # noqa: ASYNC110  (the listener task fills ``completed``)
        await asyncio.sleep(0.01)
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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(i not in completed for i in returned):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    listener.cancel()
    await ws.close()
    delays = [max(0.0, completed[i] - at) * 1000 for i, at in returned.items() if i in completed]
    return {
        "delays_ms": delays,
        "early": sum(1 for i, at in returned.items() if i in completed and completed[i] < at),
        "missing": sum(1 for i in returned if i not in completed),
        "rate": total / elapsed,
        "submit_p50_ms": percentile(submit_ms, 50),
        "submit_p99_ms": percentile(submit_ms, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
