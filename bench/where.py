"""Figure 5b's server profile by activity: submits, subscription starts, events, the worker, SQLite.

``python -m bench.where PROFILE.txt`` (a py-spy ``--threads --format raw`` profile of ``jobpulse
serve``, e.g. from ``python -m bench.fig_progress --profile``). Each sample goes to the first
bucket (in the order below) one of its frames matches (threads other than the event loop's by
their name); the rest of the event loop is "other".
"""

from __future__ import annotations

import argparse
from collections import Counter

from bench.stacks import _LINE, frames

#: a thread waiting for work (py-spy counts a wait on a Python-level lock or queue as active)
IDLE = frozenset(
    {"_worker (concurrent/futures/thread.py)", "SqliteDatabase._run_writer (core/backends/sqlite_db.py)"}
)

#: bucket → text of a frame that puts a sample in it (the first bucket that matches wins)
THREAD_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("SQLite writer thread (statements, COMMIT's fsync wait included)", ("jobpulse-sqlite-writer",)),
    ("SQLite reader threads (snapshot reads)", ("jobpulse-sqlite-reader",)),
    ("other threads (to_thread, uvloop)", ("",)),
]
LOOP_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "subscription events: render + send",
        ("execute_subscription_event", "send_next", "Operation.send_operation_message"),
    ),
    (
        "subscription start: parse/validate/extensions, resolver, snapshot, bus subscribe",
        ("handle_subscribe", "Schema._stream", "Schema.subscribe", "run_operation", "job_updates"),
    ),
    ("websocket frames in (uvicorn, strawberry's reader)", ("websockets_sansio_impl", "iter_json")),
    ("worker: receive, claim, handler, complete, publish", ("workers/", "service_worker", "write_path")),
    ("submitJob over HTTP", ("httptools_impl", "GraphQLFastPath", "fast/http.py")),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    total = 0
    for line in open(args.profile):
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        stack, count = frames(m.group(1)), int(m.group(2))
        if stack[-1] in IDLE:
            continue
        total += count
        thread = stack[0]
        if "MainThread" in thread:
            text, buckets = ";".join(stack[1:]), LOOP_BUCKETS
        else:  # a thread's bucket, by its name
            text, buckets = thread, THREAD_BUCKETS
        bucket = next((name for name, marks in buckets if any(mark in text for mark in marks)), "other")
        counts[bucket] += count
    print(f"{total} samples (threads waiting for work left out)")
    for name, count in counts.most_common():  # "other": mostly uvloop's own C code (Runner.run)
        print(f"{100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
