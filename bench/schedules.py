"""``python -m bench.schedules``: 1,000 schedules firing every second on ``jobpulse api`` (embedded).

Measures what issue 13 asks: each tick's lateness (its job's ``createdAt`` minus the tick's time,
read from the store afterwards), and the API's ``{ __typename }`` latency while it happens (one
client, sequential requests over one keep-alive connection). The first seconds (schedules being
created) are left out. Prints one row; the figures go to bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from pathlib import Path

import httpx
import orjson

from bench.procs import TOKEN, jobpulse, quiet_machine, scratch_dir

CREATE = """mutation($input: ScheduleInput!) { createSchedule(input: $input) { __typename } }"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def create_schedules(url: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def one(i: int) -> None:
            value = {
                "name": f"s{i}",
                "cron": "* * * * * *",
                "overlap": "ALLOW",
                "job": {"type": "noop", "payload": {}},
            }
            response = await client.post("/graphql", json={"query": CREATE, "variables": {"input": value}})
            assert response.json()["data"]["createSchedule"]["__typename"] == "Schedule", response.text

        for start in range(0, count, 50):
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50))))


async def probe_api(url: str, seconds: float) -> list[float]:
    """``{ __typename }`` latencies (ms), one request after the other for ``seconds``."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": "{ __typename }"})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            await asyncio.sleep(0.02)
    return latencies


def lateness_ms(database: Path, since_us: int) -> list[float]:
    """Per job a schedule made for a tick at or after ``since_us``: createdAt − tick, in ms."""
    conn = sqlite3.connect(database)
    rows = conn.execute(
        "SELECT idempotency_key, created_us FROM jobs WHERE idempotency_key LIKE 'schedule:%'"
    )
    values = []
    for key, created_us in rows:
        tick_us = int(key.rsplit(":", 1)[1])
        if tick_us >= since_us:
            values.append((created_us - tick_us) / 1000)
    conn.close()
    return values


async def main(count: int, seconds: float) -> None:
    quiet_machine()
    with scratch_dir("schedules-") as data:
        api, url = jobpulse("api", "schedules-api", data)
        try:
            await create_schedules(url, count)
            since_us = int((time.time() + 2) * 1_000_000)  # from the second tick after all exist
            latencies = await probe_api(url, seconds)
        finally:
            api.stop()
        late = lateness_ms(data / "jobpulse.sqlite3", since_us)
    ticks = len(late) / count
    print(
        orjson.dumps(
            {
                "schedules": count,
                "seconds": seconds,
                "jobs": len(late),
                "ticks_per_schedule": round(ticks, 1),
                "lateness_ms": {
                    "p50": round(statistics.median(late), 1),
                    "p99": round(percentile(late, 99), 1),
                    "max": round(max(late), 1),
                },
                "api_typename_ms": {
                    "requests": len(latencies),
                    "p50": round(statistics.median(latencies), 2),
                    "p99": round(percentile(latencies, 99), 2),
                },
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.schedules, args.seconds))
