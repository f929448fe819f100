"""Request ids: one per HTTP request, bound into structlog's context and echoed as ``X-Request-ID``."""

from __future__ import annotations

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.middleware import EdgeMiddleware
from tests.api.helpers import Server


async def _context(request: Request) -> JSONResponse:
    return JSONResponse(structlog.contextvars.get_contextvars())


def _client() -> httpx.AsyncClient:
    app = EdgeMiddleware(Starlette(routes=[Route("/context", _context)]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_each_request_gets_a_new_id_bound_for_its_log_lines() -> None:
    """Without an incoming id, each request gets a fresh one, bound in the log context and echoed."""
    async with _client() as client:
        first, second = await client.get("/context"), await client.get("/context")
    assert first.json()["request_id"] == first.headers["x-request-id"]
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_callers_request_id_is_kept() -> None:
    """A plain X-Request-ID from the caller is used for the request and echoed back."""
    async with _client() as client:
        response = await client.get("/context", headers={"X-Request-ID": "lb-7f3a:42"})
    assert response.headers["x-request-id"] == "lb-7f3a:42"
    assert response.json()["request_id"] == "lb-7f3a:42"


async def test_an_unsafe_request_id_is_replaced() -> None:
    """An id that is too long or has odd characters is not trusted: a new one is made."""
    async with _client() as client:
        long = await client.get("/context", headers={"X-Request-ID": "x" * 200})
        odd = await client.get("/context", headers={"X-Request-ID": 'a"b'})
    for response, sent in ((long, "x" * 200), (odd, 'a"b')):
        assert response.headers["x-request-id"] != sent
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_the_context_is_cleared_after_the_request() -> None:
    """The request id does not leak into log lines written after the request ended."""
    async with _client() as client:
        await client.get("/context")
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_the_api_echoes_request_ids(server: Server) -> None:
    """The jobpulse app itself answers every route, GraphQL included, with an X-Request-ID."""
    async with server.http() as client:
        health = await client.get("/healthz")
        graphql = await client.post(
            "/graphql", json={"query": "{ jobTypes { name } }"}, headers={"X-Request-ID": "r1"}
        )
    assert len(health.headers["x-request-id"]) == 32
    assert graphql.headers["x-request-id"] == "r1"


async def test_refusals_of_the_body_limit_carry_the_request_id(server: Server) -> None:
    """A 413 from the body limit is answered by the same middleware: it has an X-Request-ID too."""
    async with server.http() as client:
        response = await client.post(
            "/graphql",
            content=b"x" * (server.app.state.settings.max_request_bytes + 1),
            headers={"content-type": "application/json", "X-Request-ID": "big-1"},
        )
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "big-1"
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_the_access_line_is_logged_at_debug() -> None:
    """Each request's "http request" line is a debug line (kept, but out of production's info logs)."""
    with structlog.testing.capture_logs() as captured:
        async with _client() as client:
            await client.get("/context")
    assert [e["log_level"] for e in captured if e["event"] == "http request"] == ["debug"]
