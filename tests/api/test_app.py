"""The application around the schema: health, readiness, GraphiQL, lifespan and background tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.errors import BackendUnavailableError
from core.service import JobService
from tests.api.helpers import ALICE, Server, api_settings, run_server


async def test_healthz_answers_ok(server: Server) -> None:
    """GET /healthz is 200 {"status": "ok"} without a token."""
    async with server.http() as client:
        response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_lists_every_backend(server: Server) -> None:
    """GET /readyz is 200 when every backend answers, naming each with its kind."""
    async with server.http() as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "backends": {
            "store": {"kind": "sqlite", "ok": True},
            "queue": {"kind": "sqlite", "ok": True},
            "bus": {"kind": "local", "ok": True},
            "blobs": {"kind": "files", "ok": True},
        },
    }


async def test_readyz_is_503_when_a_backend_does_not_answer(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /readyz is 503 and names the failing backend and its error."""

    async def down() -> None:
        raise BackendUnavailableError("queue unreachable")

    monkeypatch.setattr(server.service.queue, "ping", down)
    async with server.http() as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["backends"]["queue"] == {"kind": "sqlite", "ok": False, "error": "queue unreachable"}
    assert body["backends"]["store"]["ok"] is True


async def test_graphiql_is_served_to_browsers_without_a_token(server: Server) -> None:
    """GET /graphql asking for HTML gets the GraphiQL page, no token needed."""
    async with server.http() as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_queries_over_get_need_a_token_too(server: Server) -> None:
    """GET /graphql?query=… runs the query for a valid token and refuses it without one."""
    async with server.http(ALICE) as client:
        allowed = await client.get("/graphql", params={"query": "{ jobTypes { name } }"})
    async with server.http() as client:
        refused = await client.get("/graphql", params={"query": "{ jobTypes { name } }"})

    assert allowed.json()["data"]["jobTypes"]
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_mutations_over_get_are_refused(server: Server) -> None:
    """A mutation sent with GET is not run."""
    async with server.http(ALICE) as client:
        response = await client.get(
            "/graphql", params={"query": 'mutation { redriveDeadLetters(type: "noop") }'}
        )

    assert response.status_code in (400, 405)


async def test_app_state_holds_the_service_and_backend_kinds(server: Server) -> None:
    """The lifespan puts the service, the settings and the backend kinds in app.state."""
    state = server.app.state

    assert isinstance(state.service, JobService)
    assert state.settings.max_payload_bytes == 4096
    assert state.backend_kinds == {"store": "sqlite", "queue": "sqlite", "bus": "local", "blobs": "files"}


async def test_background_tasks_run_with_the_service_and_stop_on_shutdown(tmp_path: Path) -> None:
    """Each background task starts with the app's service and sees the stop event set at shutdown."""
    started = asyncio.Event()
    seen: dict[str, object] = {}

    async def task(service: JobService, stop: asyncio.Event) -> None:
        seen["service"] = service
        started.set()
        await stop.wait()
        seen["stopped"] = True

    async with run_server(api_settings(tmp_path), background=[task]) as server:
        await asyncio.wait_for(started.wait(), 10)
        assert seen["service"] is server.service
        assert "stopped" not in seen

    assert seen["stopped"] is True


async def test_extra_routes_are_served(tmp_path: Path) -> None:
    """Routes passed as extra_routes are served beside the API's own."""

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async with run_server(api_settings(tmp_path), extra_routes=[Route("/hello", hello)]) as server:
        async with server.http() as client:
            response = await client.get("/hello")

    assert (response.status_code, response.text) == (200, "hello")
