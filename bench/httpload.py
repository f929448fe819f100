"""Closed-loop HTTP load with exact per-request latencies, its own process.

``python -m bench.httpload --url http://127.0.0.1:PORT/graphql --body FILE --connections 64
--seconds 10 --warmup 2 --token T [--marker TEXT]``

Why not wrk for latency: wrk "corrects" its percentiles for coordinated omission (``stats_correct``
adds, for every response slower than the mean interval per connection, the requests an open-loop
client would have sent meanwhile), so one 60 ms pause at 4,000 req/s weighs like 240 slow
requests. Here every percentile is of the requests actually made. Keep-alive connections, one
request in flight on each, the request written in one piece, the answer read by its
Content-Length. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bench.report import percentile

T = TypeVar("T")


def raw_post(url: str, body: bytes, token: str) -> bytes:
    """A keep-alive ``POST`` of a JSON ``body`` to ``url``, as bytes written in one piece."""
    parts = urlsplit(url)
    return (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    """Write ``request``; the answer's head and body (read by its Content-Length)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return head, await reader.readexactly(length)


def run_fast(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` on uvloop when it is installed (a client must not be the bottleneck), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    request = raw_post(args.url, args.body_bytes, args.token)
    marker = args.marker.encode()
    expected = f"HTTP/1.1 {args.status}".encode()
    latencies: list[float] = []
    counts = {"bad": 0, "requests": 0}
    sample: list[str] = []
    started = time.monotonic()
    measure_from = started + args.warmup
    stop_at = measure_from + args.seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        while (sent := time.monotonic()) < stop_at:
            head, answer = await exchange(reader, writer, request)
            done = time.monotonic()
            if sent < measure_from:
                continue
            counts["requests"] += 1
            latencies.append((done - sent) * 1000)
            if not head.startswith(expected) or marker not in answer:
                counts["bad"] += 1
                if not sample:
                    sample.append((head[:20] + answer[:200]).decode(errors="replace"))
        writer.close()

    await asyncio.gather(*(connection() for _ in range(args.connections)))
    return {
        "requests": counts["requests"],
        "seconds": args.seconds,
        "bad": counts["bad"],
        "sample": sample[0] if sample else "",
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--token", required=True)
    parser.add_argument("--marker", default="")
    parser.add_argument("--status", type=int, default=200, help="the status every answer must have")
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        args.body_bytes = f.read()
    print(json.dumps(run_fast(lambda: run(args))))


if __name__ == "__main__":
    main()
