"""Figure 6: many subscriptions on one API process (delivery delay); ``Clients`` for figure 7 too."""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path

from bench.procs import PYTHON, CpuMeter, Proc, RedisServer, free_port, jobpulse, scratch_dir
from bench.report import Row, percentile
from bench.seed import submit_jobs

__all__ = ["Clients", "figure6", "write_ids"]

CLIENT_PROCESSES = 4


class Clients:
    """``CLIENT_PROCESSES`` websocket load processes sharing ``ids`` between them."""

    def __init__(
        self, mode: str, url: str, ids_file: Path, count: int, name: str, bare: bool, deflate: bool = True
    ) -> None:
        share = -(-count // CLIENT_PROCESSES)
        self.procs = [
            Proc(
                f"{name}-client{n}",
                [
                    PYTHON,
                    "-m",
                    "bench.wsload",
                    mode,
                    "--url",
                    url,
                    "--ids",
                    str(ids_file),
                    "--start",
                    str(n * share),
                    "--count",
                    str(min(share, count - n * share)),
                ]
                + (["--bare"] if bare else [])
                + ([] if deflate else ["--no-deflate"]),
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
            )
            for n in range(CLIENT_PROCESSES)
        ]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _line(self, proc: Proc, timeout: float) -> str:
        assert proc.popen.stdout is not None
        ready, _, _ = select.select([proc.popen.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{proc.name} said nothing in {timeout:.0f}s:\n{proc.output()}")
        line = proc.popen.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{proc.name} ended:\n{proc.output()}")
        return line

    def ready(self, timeout: float = 300) -> int:
        return sum(int(self._line(p, timeout).split()[1]) for p in self.procs)

    def say(self, text: str, timeout: float = 120) -> list[str]:
        for proc in self.procs:
            assert proc.popen.stdin is not None
            proc.popen.stdin.write(f"{text}\n".encode())
            proc.popen.stdin.flush()
        return [self._line(p, timeout) for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def write_ids(directory: Path, ids: list[str]) -> Path:
    path = directory / "ids.json"
    path.write_text(json.dumps(ids))
    return path


# -- figure 6 ---------------------------------------------------------------------------------
SUBSCRIPTIONS_6 = 5_000
PUBLISH_SECONDS = 25
WARMUP_SECONDS = 5


def _delivery(
    server_pid: int, ws_url: str, redis: RedisServer, ids_file: Path, name: str, bare: bool
) -> tuple[list[float], int, dict[str, float], float]:
    clients = Clients("listen", ws_url, ids_file, SUBSCRIPTIONS_6, name, bare)
    try:
        connect_started = time.monotonic()
        if clients.ready() != SUBSCRIPTIONS_6:
            raise RuntimeError("not every subscription opened")
        connect_seconds = time.monotonic() - connect_started
        publisher = Proc(
            f"{name}-publisher",
            [
                PYTHON,
                "-m",
                "bench.publisher",
                "--redis",
                redis.url,
                "--ids",
                str(ids_file),
                "--rate",
                str(SUBSCRIPTIONS_6),
                "--seconds",
                str(PUBLISH_SECONDS),
            ]
            + (["--bare"] if bare else []),
            stdout=subprocess.PIPE,
        )
        time.sleep(WARMUP_SECONDS)
        since = time.time()
        meter = CpuMeter(server=server_pid, clients=clients.pids, publisher=publisher.pid).start()
        time.sleep(PUBLISH_SECONDS - WARMUP_SECONDS - 1)
        cpu = meter.stop()
        out, _ = publisher.popen.communicate(timeout=60)
        published = json.loads(out.decode().strip().splitlines()[-1])
        time.sleep(1)
        delays = [d for line in clients.say(f"report {since}") for d in json.loads(line)["delays_ms"]]
        # Published at a steady rate: the share of it after ``since`` is what should have arrived.
        share = (published["ended"] - since) / (published["ended"] - published["started"])
        expected = round(published["published"] * share)
    finally:
        clients.stop()
    return delays, expected, cpu, connect_seconds


def figure6() -> list[Row]:
    redis = RedisServer()
    redis.start()
    try:
        with scratch_dir("fig6") as data:
            ids = submit_jobs(data, SUBSCRIPTIONS_6)
            ids_file = write_ids(data, ids)
            port = free_port()
            bare = Proc("fig6-bare", [PYTHON, "-m", "bench.bare", "--port", str(port), "--redis", redis.url])
            try:
                bare.wait_http(f"http://127.0.0.1:{port}/readyz")
                base, base_expected, base_cpu, _ = _delivery(
                    bare.pid, f"ws://127.0.0.1:{port}/push", redis, ids_file, "fig6-bare", True
                )
            finally:
                bare.stop()
            server, url = jobpulse("api", "fig6-jobpulse", data, JOBPULSE_REDIS_URL=redis.url)
            try:
                ours, expected, cpu, connect_seconds = _delivery(
                    server.pid,
                    url.replace("http", "ws") + "/graphql",
                    redis,
                    ids_file,
                    "fig6-jobpulse",
                    False,
                )
            finally:
                server.stop()
    finally:
        redis.close()
    p99 = percentile(ours, 99)
    return [
        Row(
            "6",
            "5,000 `jobUpdated` subscriptions on one API process, 1 event/s each (5,000 events/s via Redis)",
            f"p50 {percentile(ours, 50):.1f} ms, **p99 {p99:.1f} ms**, max {max(ours, default=0):.0f} ms; "
            f"{len(ours):,} of {expected:,} delivered",
            f"bare Starlette websocket + Redis fan-out: p50 {percentile(base, 50):.1f} ms, "
            f"p99 {percentile(base, 99):.1f} ms; {len(base):,} of {base_expected:,}",
            "p99 ≤ 50 ms",
            p99 <= 50 and len(ours) >= expected * 0.98,
            f"jobpulse: server {cpu['server']:.0f}%, 4 clients {cpu['clients']:.0f}%, publisher "
            f"{cpu['publisher']:.0f}% (machine {cpu['machine']:.0f}% of 200%); "
            f"bare: server {base_cpu['server']:.0f}%, clients {base_cpu['clients']:.0f}%; "
            f"5,000 subscriptions opened in {connect_seconds:.0f}s",
        )
    ]
