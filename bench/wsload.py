"""Websocket load, run as its own process (several at once for figures 6 and 7).

``python -m bench.wsload MODE --url WS_URL --ids FILE --start N --count N [--bare]``

* ``hold``: open ``count`` subscriptions (``jobUpdated`` on one job each, one websocket each; with
  ``--bare``, a bare websocket on ``/idle``), print ``READY n``, hold them until a line ``close``
  arrives on stdin, close them all, print ``CLOSED``. A line ``add K`` first opens K more
  ``jobUpdated`` subscriptions on each websocket (other jobs of the ids file), waits for each one's
  snapshot and prints ``ADDED n`` (figure 7b: subscriptions sharing a websocket).
* ``listen``: the same (``--bare``: ``/push``, sending the key), then record, for every message,
  receive time minus the publish time it carries; on ``report T0`` print one JSON line with the
  delays of messages published after T0 and exit.

The graphql-transport-ws handshake is written out by hand (connection_init, ack, subscribe) so the
client costs little CPU. Clients offer permessage-deflate, as browsers do, unless ``--no-deflate``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench.procs import TOKEN, raise_nofile

SUBSCRIBE = "subscription Watch($id: ID!) { jobUpdated(id: $id) { id version status progressMessage } }"
CONNECT_AT_ONCE = 50
COMPRESSION: str | None = "deflate"


async def open_graphql(url: str, job_id: str) -> ClientConnection:
    """A websocket with one ``jobUpdated`` subscription whose snapshot has arrived."""
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],
        open_timeout=60,
        max_queue=64,  # type: ignore[list-item]
        compression=COMPRESSION,
    )
    await ws.send(
        orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {TOKEN}"}}).decode()
    )
    ack = orjson.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    await ws.send(
        orjson.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": job_id}}}
        ).decode()
    )
    first = orjson.loads(await ws.recv())
    if first.get("type") != "next" or first["payload"].get("errors"):
        raise RuntimeError(f"subscription failed: {first}")
    return ws


async def add_subscriptions(ws: ClientConnection, job_ids: list[str], first_id: int) -> int:
    """Open one more ``jobUpdated`` per id on ``ws`` (operation ids from ``first_id``); wait for
    every snapshot."""
    waiting = set()
    for n, job_id in enumerate(job_ids, start=first_id):
        waiting.add(str(n))
        payload = {"query": SUBSCRIBE, "variables": {"id": job_id}}
        await ws.send(orjson.dumps({"id": str(n), "type": "subscribe", "payload": payload}).decode())
    while waiting:
        message = orjson.loads(await ws.recv())
        if message.get("type") != "next" or message["payload"].get("errors"):
            raise RuntimeError(f"subscription failed: {message}")
        waiting.discard(message["id"])
    return len(job_ids)


async def add_all(args: argparse.Namespace, sockets: list[ClientConnection], more: int, added: int) -> int:
    """``more`` subscriptions more on every socket, on jobs its first subscriptions do not watch."""
    every: list[str] = args.ids_list
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def add(n: int, ws: ClientConnection) -> int:
        base = args.start + len(sockets) * (1 + added) + n * more
        async with gate:
            job_ids = [every[(base + k) % len(every)] for k in range(more)]
            return await add_subscriptions(ws, job_ids, first_id=2 + added)

    return sum(await asyncio.gather(*(add(n, ws) for n, ws in enumerate(sockets))))


async def open_bare(url: str, key: str) -> ClientConnection:
    ws = await connect(url, open_timeout=60, max_queue=64, compression=COMPRESSION)
    await ws.send(key)
    return ws


async def open_all(args: argparse.Namespace, ids: list[str]) -> list[ClientConnection]:
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(key: str) -> ClientConnection:
        async with gate:
            if args.bare:
                return await open_bare(args.url, key)
            return await open_graphql(args.url, key)

    return list(await asyncio.gather(*(one(k) for k in ids)))


async def stdin_lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _stamp(text: str | bytes, bare: bool) -> float | None:
    """The publish time a message carries (``progressMessage`` for GraphQL, the text for bare)."""
    if bare:
        return float(text)
    message = orjson.loads(text)
    if message.get("type") != "next":
        return None
    job = message["payload"]["data"]["jobUpdated"]
    return float(job["progressMessage"])


async def main_async(args: argparse.Namespace) -> None:
    raise_nofile()
    global COMPRESSION
    COMPRESSION = None if args.no_deflate else "deflate"
    ids = args.ids_list[args.start : args.start + args.count]
    commands = await stdin_lines()
    sockets = await open_all(args, ids)
    print(f"READY {len(sockets)}", flush=True)
    received: list[tuple[float, float]] = []  # (published at, delay)

    async def listen(ws: ClientConnection) -> None:
        async for text in ws:
            now = time.time()
            stamp = _stamp(text, args.bare)
            if stamp is not None:
                received.append((stamp, now - stamp))

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets] if args.mode == "listen" else []
    added = 0
    while line := (await commands.readline()).decode().strip():
        if line.startswith("add"):
            more = int(line.split()[1])
            count = await add_all(args, sockets, more, added)
            added += more
            print(f"ADDED {count}", flush=True)
            continue
        if line == "close":
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            print("CLOSED", flush=True)
            return
        if line.startswith("report"):
            since = float(line.split()[1])
            delays = [round(d * 1000, 3) for at, d in received if at >= since]
            print(json.dumps({"delays_ms": delays}), flush=True)
            return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["hold", "listen"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    args = parser.parse_args()
    with open(args.ids) as f:
        args.ids_list = json.load(f)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_async(args))
    else:
        uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
