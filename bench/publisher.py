"""Figure 6's event source, its own process: job events on Redis at a steady rate.

``python -m bench.publisher --redis URL --ids FILE --rate 5000 --seconds 25 [--bare]``

Each job gets one event per second (``rate`` jobs in all). An event is what ``RedisEventBus``
publishes: ``event_to_dict`` of a PROCESSING job one version newer, on the job's channel, with
the publish time (``time.time()``) as ``progressMessage``. The encoding is done once per job
with placeholders, so the publisher's own cost stays small; ticks of 10 ms publish in one
pipeline. ``--bare`` publishes ``key|time`` on ``bench:push`` instead (the baseline server).
"""

from __future__ import annotations

import argparse
import json
import time

from redis import Redis

from core.backends.codec import dumps, event_to_dict
from core.models import Job, JobEvent, JobEventKind, JobStatus, utcnow
from core.ports import job_topic

TICK = 0.01
PREFIX = "jobpulse:"


def templates(ids: list[str]) -> list[bytes]:
    now = utcnow()
    out = []
    for job_id in ids:
        job = Job(
            id=job_id,
            type="noop",
            owner="bench",
            payload=None,
            status=JobStatus.PROCESSING,
            version=987654321,
            attempts=1,
            progress=50.0,
            progress_message="@@TS@@",
            created_at=now,
            updated_at=now,
            started_at=now,
            lease_owner="bench-publisher",
        )
        out.append(dumps(event_to_dict(JobEvent.of(job, JobEventKind.PROGRESS, "@@TS@@"))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--bare", action="store_true")
    args = parser.parse_args()
    ids: list[str] = json.loads(open(args.ids).read())
    client = Redis.from_url(args.redis)
    bodies = None if args.bare else templates(ids)
    channels = [f"{PREFIX}{job_topic(i)}" for i in ids]
    per_tick = args.rate * TICK
    version = 1
    sent = 0.0
    position = 0
    started, wall_started = time.monotonic(), time.time()
    while (elapsed := time.monotonic() - started) < args.seconds:
        due = int(args.rate * elapsed) - int(sent)
        pipe = client.pipeline(transaction=False)
        for _ in range(max(0, due)):
            stamp = repr(time.time()).encode()
            if position == 0:
                version += 1
            if bodies is None:
                pipe.publish("bench:push", f"{ids[position]}|".encode() + stamp)
            else:
                body = bodies[position].replace(b"987654321", str(version).encode())
                pipe.publish(channels[position], body.replace(b"@@TS@@", stamp))
            position = (position + 1) % len(ids)
        pipe.execute()
        sent += max(0, due)
        pause = started + (int(sent) + per_tick) / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(min(pause, TICK))
    print(json.dumps({"published": int(sent), "started": wall_started, "ended": time.time()}), flush=True)


if __name__ == "__main__":
    main()
