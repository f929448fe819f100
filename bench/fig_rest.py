"""Figure 16: ``POST /api/v1/jobs`` against ``submitJob``, both at 64 clients on the same server."""

from __future__ import annotations

from bench.fig_http import SUBMIT, _cpu, _exact, _stored_jobs
from bench.procs import jobpulse, scratch_dir
from bench.report import Row
from bench.wrk import WrkResult

__all__ = ["figure16"]

REST_SUBMIT: dict[str, object] = {"type": "noop", "payload": {"note": "bench"}}
CLIENTS = 64


def figure16() -> list[Row]:
    with scratch_dir("fig16") as data:
        server, url = jobpulse("api", "fig16-jobpulse", data)
        try:
            before = _stored_jobs(data)
            graphql = _exact(f"{url}/graphql", SUBMIT, server.pid, CLIENTS, marker='"status":"PENDING"')
            rest = _exact(
                f"{url}/api/v1/jobs",
                REST_SUBMIT,
                server.pid,
                CLIENTS,
                marker='"status":"PENDING"',
                status=202,
            )
            stored = _stored_jobs(data) - before
        finally:
            server.stop()
    if stored < graphql.requests + rest.requests:
        raise RuntimeError(f"{graphql.requests + rest.requests} submits acknowledged, {stored} jobs stored")
    ratio = rest.rate / graphql.rate
    # Server CPU per job: what the ratio would be on a machine of our own (others' load moves the
    # rates, much less the CPU each request costs).
    rest_ms, graphql_ms = _cpu_ms_per_request(rest), _cpu_ms_per_request(graphql)
    return [
        Row(
            "16",
            "`POST /api/v1/jobs` (REST), 64 concurrent clients",
            f"{rest.rate:,.0f} jobs/s = **{ratio:.2f}×** `submitJob` (p99 {rest.p99_ms:.1f} ms)",
            f"`submitJob`, same server, 64 clients: {graphql.rate:,.0f} jobs/s (p99 {graphql.p99_ms:.1f} ms)",
            "≥ 1.2× `submitJob`",
            ratio >= 1.2,
            f"{_cpu(rest)}; server CPU per job: REST {rest_ms:.2f} ms, `submitJob` {graphql_ms:.2f} ms "
            f"({graphql_ms / rest_ms:.2f}×)",
        )
    ]


def _cpu_ms_per_request(result: WrkResult) -> float:
    return result.cpu["server"] / 100 * result.seconds * 1000 / max(result.requests, 1)
