"""Figures 1, 2, 3 and 8: GraphQL over HTTP, driven by wrk against ``jobpulse api``."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from bench import raw_sqlite
from bench.procs import PYTHON, TOKEN, CpuMeter, Proc, free_port, jobpulse, scratch_dir
from bench.report import Row
from bench.seed import copy_million, submit_jobs
from bench.wrk import WrkResult, run_wrk

__all__ = ["figure1", "figure2", "figure3", "figure8"]

TYPENAME = {"query": "{ __typename }"}
SUBMIT_QUERY = (
    "mutation Submit($input: SubmitJobInput!) { submitJob(input: $input) "
    "{ ... on Job { id status } ... on UserError { code message } } }"
)
SUBMIT = {"query": SUBMIT_QUERY, "variables": {"input": {"type": "noop", "payload": {"note": "bench"}}}}
SUBMIT_MANY = {
    "query": "mutation SubmitMany($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) "
    "{ ... on Job { id status } ... on UserError { code message } } }",
    "variables": {"inputs": [{"type": "noop", "payload": {"note": f"bench {n}"}} for n in range(100)]},
}
LIST_FIELDS = (
    "edges { cursor node { id type status attempts result createdAt completedAt } } "
    "pageInfo { hasNextPage endCursor }"
)
LIST = {"query": f"{{ jobs(filter: {{status: [COMPLETED]}}, first: 20) {{ {LIST_FIELDS} }} }}"}
LIST_COUNTED = {
    "query": f"{{ jobs(filter: {{status: [COMPLETED]}}, first: 20) {{ totalCount {LIST_FIELDS} }} }}"
}
SECONDS = 10


def _drive(
    url: str, body: dict[str, object], pid: int, connections: int, seconds: float = SECONDS, marker: str = ""
) -> WrkResult:
    """A short warm-up, then the measured run; refuse a run with failed or refused requests."""
    run_wrk(url, body, connections=connections, seconds=2, server_pid=pid, token=TOKEN, marker=marker)
    result = run_wrk(
        url, body, connections=connections, seconds=seconds, server_pid=pid, token=TOKEN, marker=marker
    )
    if not result.ok:
        raise RuntimeError(f"{result.bad} bad responses, {result.errors} socket errors; e.g. {result.sample}")
    return result


def _exact(
    url: str,
    body: dict[str, object],
    pid: int,
    connections: int,
    seconds: float = SECONDS,
    marker: str = "",
    status: int = 200,
) -> WrkResult:
    """Like ``_drive`` but with exact per-request percentiles (``bench/httpload.py``, no CO correction)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(json.dumps(body).encode())
        body_path = f.name
    try:
        args = [
            PYTHON,
            "-m",
            "bench.httpload",
            "--url",
            url,
            "--body",
            body_path,
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
            "--warmup",
            "2",
            "--token",
            TOKEN,
            "--marker",
            marker,
            "--status",
            str(status),
        ]
        client = Proc(f"httpload-{os.getpid()}", args, stdout=subprocess.PIPE)
        meter = CpuMeter(server=pid).start()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, _ = client.popen.communicate(timeout=seconds + 120)
        cpu = meter.stop()
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(body_path)
    used = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    cpu["client"] = 100 * used / (time.monotonic() - meter.started)
    if client.popen.returncode != 0:
        raise RuntimeError(f"httpload failed:\n{client.output()}")
    data = json.loads(out.decode().strip().splitlines()[-1])
    if data["bad"]:
        raise RuntimeError(f"{data['bad']} bad responses; e.g. {data['sample']}")
    return WrkResult(
        requests=data["requests"],
        seconds=data["seconds"],
        bad=0,
        errors=0,
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        sample="",
        cpu=cpu,
    )


def _cpu(result: WrkResult) -> str:
    generator = "wrk" if "wrk" in result.cpu else "client"
    return (
        f"server {result.cpu['server']:.0f}%, {generator} {result.cpu[generator]:.0f}% "
        f"(machine {result.cpu['machine']:.0f}% of 200%)"
    )


def _stored_jobs(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "jobpulse.sqlite3")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    finally:
        conn.close()


def figure1() -> list[Row]:
    """``{ __typename }`` req/s vs a bare Starlette JSON endpoint, same uvicorn setup, 32 connections."""
    port = free_port()
    bare = Proc("fig1-bare", [PYTHON, "-m", "bench.bare", "--port", str(port)])
    try:
        bare.wait_http(f"http://127.0.0.1:{port}/readyz")
        base = _drive(f"http://127.0.0.1:{port}/json", TYPENAME, bare.pid, 32, marker="__typename")
    finally:
        bare.stop()
    with scratch_dir("fig1") as data:
        server, url = jobpulse("api", "fig1-jobpulse", data)
        try:
            ours = _drive(f"{url}/graphql", TYPENAME, server.pid, 32, marker='"__typename":"Query"')
        finally:
            server.stop()
    ratio = ours.rate / base.rate
    return [
        Row(
            "1",
            "`{ __typename }` over HTTP, req/s, 32 connections",
            f"{ours.rate:,.0f} req/s = **{ratio:.2f}×** (p99 {ours.p99_ms:.1f} ms)",
            f"bare Starlette JSON: {base.rate:,.0f} req/s (p99 {base.p99_ms:.1f} ms)",
            "≥ 0.5×",
            ratio >= 0.5,
            f"jobpulse: {_cpu(ours)}; bare: {_cpu(base)}",
        )
    ]


def _submit_run(data: Path, name: str, connections: int = 64) -> tuple[WrkResult, WrkResult, int]:
    """submitJob at ``connections`` clients, and ``{ __typename }`` on the same server for scale."""
    server, url = jobpulse("api", name, data)
    try:
        before = _stored_jobs(data)
        submit = _exact(f"{url}/graphql", SUBMIT, server.pid, connections, marker='"status":"PENDING"')
        stored = _stored_jobs(data) - before
        ceiling = _exact(
            f"{url}/graphql", TYPENAME, server.pid, connections, seconds=5, marker='"__typename":"Query"'
        )
    finally:
        server.stop()
    if stored < submit.requests:
        raise RuntimeError(f"{submit.requests} submits acknowledged but only {stored} jobs stored")
    return submit, ceiling, stored


def figure2() -> list[Row]:
    with scratch_dir("fig2") as data:
        submit, ceiling, _ = _submit_run(data, "fig2-jobpulse")
    met = submit.rate >= 2000 and submit.p99_ms <= 25
    return [
        Row(
            "2",
            "`submitJob`, 64 concurrent clients",
            f"**{submit.rate:,.0f} jobs/s**, p50 {submit.p50_ms:.1f} ms, **p99 {submit.p99_ms:.1f} ms**",
            f"`{{ __typename }}` on the same server, 64 clients: {ceiling.rate:,.0f} req/s, "
            f"p99 {ceiling.p99_ms:.1f} ms",
            "≥ 2,000 jobs/s, p99 ≤ 25 ms",
            met,
            _cpu(submit),
        )
    ]


def figure3() -> list[Row]:
    with scratch_dir("fig3") as data:
        server, url = jobpulse("api", "fig3-jobpulse", data)
        try:
            many = _drive(f"{url}/graphql", SUBMIT_MANY, server.pid, 8, marker='{"data":{"submitJobs":[{"id"')
            stored = _stored_jobs(data)
        finally:
            server.stop()
    if stored < many.requests * 100:
        raise RuntimeError(f"{many.requests * 100} jobs acknowledged but only {stored} stored")
    with scratch_dir("fig3-raw") as raw:
        raw_rate = raw_sqlite.bulk_insert_rate(raw / "raw.sqlite3")
        encode = raw_sqlite.encode_rate()
    with scratch_dir("fig3-service") as direct:
        import time

        started = time.perf_counter()
        submit_jobs(direct, 20_000, chunk=100)
        service_rate = 20_000 / (time.perf_counter() - started)
    rate = many.rate * 100
    return [
        Row(
            "3",
            "`submitJobs`, 100 inputs per call, 8 concurrent calls",
            f"**{rate:,.0f} jobs/s** ({many.rate:,.0f} calls/s, p99 {many.p99_ms:.0f} ms per call)",
            f"raw SQLite, same rows, 100 per commit: {raw_rate:,.0f} jobs/s; "
            f"`JobService.submit_many` in-process (no HTTP/GraphQL): {service_rate:,.0f} jobs/s; "
            f"jobpulse's row encoding alone: {encode:,.0f} jobs/s",
            "≥ 20,000 jobs/s (BullMQ bulk ~15k/s)",
            rate >= 20_000,
            _cpu(many),
        )
    ]


def figure8() -> list[Row]:
    with scratch_dir("fig8-empty") as empty:
        empty_submit, _, _ = _submit_run(empty, "fig8-empty")
    with scratch_dir("fig8-full") as data:
        copy_million(data)
        server, url = jobpulse("api", "fig8-jobpulse", data)
        try:
            graphql = f"{url}/graphql"
            floor = _exact(graphql, TYPENAME, server.pid, 1, seconds=5, marker='"__typename"')
            listed = _exact(graphql, LIST, server.pid, 1, marker='"status":"COMPLETED"')
            counted = _exact(graphql, LIST_COUNTED, server.pid, 1, seconds=5, marker='"totalCount"')
        finally:
            server.stop()
        full_submit, _, _ = _submit_run(data, "fig8-full-submit")
    ratio = full_submit.rate / empty_submit.rate
    return [
        Row(
            "8a",
            "`jobs(filter:{status:[COMPLETED]}, first: 20)` with 1,000,000 jobs stored, 1 client",
            f"p50 {listed.p50_ms:.1f} ms, **p99 {listed.p99_ms:.1f} ms** ({listed.rate:,.0f} req/s)",
            f"`{{ __typename }}`, same server, 1 client: p99 {floor.p99_ms:.1f} ms",
            "p99 ≤ 10 ms",
            listed.p99_ms <= 10,
            f"{_cpu(listed)}; with `totalCount` too: p50 {counted.p50_ms:.0f} ms, "
            f"p99 {counted.p99_ms:.0f} ms",
        ),
        Row(
            "8b",
            "`submitJob` at 64 clients with 1,000,000 jobs stored",
            f"{full_submit.rate:,.0f} jobs/s = **{ratio:.2f}×** empty (p99 {full_submit.p99_ms:.1f} ms)",
            f"empty store, same run: {empty_submit.rate:,.0f} jobs/s (p99 {empty_submit.p99_ms:.1f} ms)",
            "≥ 0.8× empty",
            ratio >= 0.8,
            _cpu(full_submit),
        ),
    ]
