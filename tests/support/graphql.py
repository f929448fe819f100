"""Real GraphQL clients for tests: httpx over HTTP, gql over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

__all__ = ["follow_job", "gql_http", "subscribe"]

JOB_FIELDS = "id type status version progress progressMessage attempts maxAttempts result error owner"


def gql_http(
    url: str, token: str | None, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST one operation; return the whole response body (data and errors)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscribe(
    url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Run one subscription over graphql-transport-ws and yield its results."""
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as session:
        async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
            yield result


async def follow_job(url: str, token: str, job_id: str) -> list[dict[str, Any]]:
    """Every snapshot ``jobUpdated`` emits for a job, until it completes after the terminal one."""
    query = f"subscription($id: ID!) {{ jobUpdated(id: $id) {{ {JOB_FIELDS} }} }}"
    return [r["jobUpdated"] async for r in subscribe(url, token, query, {"id": job_id})]


def follow_job_sync(url: str, token: str, job_id: str) -> list[dict[str, Any]]:
    """``follow_job`` for synchronous tests, in a thread of its own (Playwright's sync API holds a loop)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, follow_job(url, token, job_id)).result()
