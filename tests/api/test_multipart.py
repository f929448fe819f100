"""GraphQL subscriptions over HTTP multipart (``Accept: multipart/mixed;subscriptionSpec=1.0``), on both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import ALICE, BOB, DEADLINE, Server, wait_until
from tests.api.served import fanout, server_on
from tests.support.services import BACKENDS

ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
JOB_UPDATED = "subscription($id: ID!) { jobUpdated(id: $id) { id status version progress } }"


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """A real API server on the embedded, then the distributed backends."""
    async with server_on(request, tmp_path) as running:
        yield running


async def parts(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON body of each part of a ``multipart/mixed; boundary=graphql`` stream, heartbeats (``{}``) left out."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while True:
            start = buffer.find("\r\n\r\n")
            end = buffer.find("\r\n--graphql", start + 4) if start >= 0 else -1
            if end < 0:
                break
            body = json.loads(buffer[start + 4 : end])
            buffer = buffer[end + len("\r\n--graphql") :]
            if body:
                yield body


def post(client: httpx.AsyncClient, job_id: str) -> Any:
    body = {"query": JOB_UPDATED, "variables": {"id": job_id}}
    return client.stream("POST", "/graphql", json=body, headers={"Accept": ACCEPT})


async def test_job_updated_streams_every_change_then_ends(server: Server) -> None:
    """jobUpdated over multipart emits the job, each change in version order, and ends the stream at COMPLETED."""
    job_id = await server.submit(ALICE)
    async with server.http(ALICE) as client, post(client, job_id) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/mixed")
        stream = parts(response)
        first = await anext(stream)
        claim = await server.start(job_id)
        await server.service.progress(claim, 50, "half")
        await server.service.complete(claim, {"ok": True})
        rest = [part async for part in stream]
    updates = [part["payload"]["data"]["jobUpdated"] for part in [first, *rest]]
    assert [(u["status"], u["progress"]) for u in updates] == [
        ("PENDING", 0.0), ("PROCESSING", 0.0), ("PROCESSING", 50.0), ("COMPLETED", 100.0),
    ]  # fmt: skip
    assert [u["version"] for u in updates] == sorted({u["version"] for u in updates})


async def test_without_a_token_nothing_streams(server: Server) -> None:
    """A multipart subscription without a token answers one UNAUTHENTICATED error, and subscribes to nothing."""
    job_id = await server.submit(ALICE)
    async with server.http() as client:
        response = await client.post(
            "/graphql", json={"query": JOB_UPDATED, "variables": {"id": job_id}}, headers={"Accept": ACCEPT}
        )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert fanout(server).subscription_count == 0


async def test_another_owners_job_is_not_found(server: Server) -> None:
    """A multipart jobUpdated of another owner's job streams one NOT_FOUND error, as on the websocket."""
    job_id = await server.submit(BOB)
    async with server.http(ALICE) as client, post(client, job_id) as response:
        got = [part async for part in parts(response)]
    assert [e["extensions"]["code"] for e in got[0]["payload"]["errors"]] == ["NOT_FOUND"]
    assert "data" not in got[0]["payload"] or got[0]["payload"]["data"] is None


async def test_an_abandoned_stream_frees_its_subscription(server: Server) -> None:
    """A client that closes a multipart subscription mid-stream frees its bus subscription on the server."""
    job_id = await server.submit(ALICE)
    async with server.http(ALICE) as client:
        async with post(client, job_id) as response:
            await anext(parts(response))
            assert fanout(server).subscription_count == 1
        # the response is closed here, mid-stream: the connection goes with it
    await wait_until(lambda: fanout(server).subscription_count == 0, "the abandoned subscription to be freed")


async def test_a_json_query_still_takes_the_json_path(server: Server) -> None:
    """With the multipart transport on, a plain JSON query is answered as before (JSON, not a stream)."""
    job_id = await server.submit(ALICE)
    async with server.http(ALICE) as client:
        response = await asyncio.wait_for(
            client.post(
                "/graphql",
                json={"query": "query($id: ID!) { job(id: $id) { id } }", "variables": {"id": job_id}},
            ),
            DEADLINE,
        )
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"job": {"id": job_id}}}


def test_the_json_fast_path_stays_in_front_of_the_view(tmp_path: Path) -> None:
    """With multipart subscriptions on, the app still puts the JSON fast path in front of the view."""
    from api.auth import Authenticator
    from api.fast.beside_multipart import StreamAwareFastPath, fast_path_beside_multipart
    from api.schema import build_schema
    from api.view import GraphQLView
    from tests.api.helpers import api_settings

    settings = api_settings(tmp_path)
    schema = build_schema(settings)
    authenticator = Authenticator.from_settings(settings)
    [middleware] = fast_path_beside_multipart(GraphQLView(schema, authenticator), schema, authenticator)
    assert middleware.cls is StreamAwareFastPath
