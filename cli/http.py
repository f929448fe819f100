"""A small GraphQL client for the CLI: queries over HTTP, subscriptions over graphql-transport-ws.

Built on gql (the maintained Python GraphQL client) so the CLI speaks the same protocol as
browsers do, rather than a hand-written copy of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import (
    TransportError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

__all__ = ["ClientError", "JobpulseClient", "UnreachableError"]


class ClientError(Exception):
    """The server refused a request or could not be reached; the message says why."""


class UnreachableError(ClientError):
    """Nothing answered at the URL (connection refused, reset, timed out, not a jobpulse)."""


def _unreachable(url: str, exc: BaseException) -> UnreachableError:
    reason = str(exc) or exc.__class__.__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in reason:
        reason = f"{reason}: {cause}"
    return UnreachableError(f"cannot reach jobpulse at {url} ({reason})")


def _ws_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/graphql"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/graphql"
    return base + "/graphql"


def _describe(exc: Exception) -> str:
    if isinstance(exc, TransportQueryError) and exc.errors:
        first = exc.errors[0]
        code = (first.get("extensions") or {}).get("code")
        return f"{first.get('message')}" + (f" ({code})" if code else "")
    return str(exc) or exc.__class__.__name__


class JobpulseClient:
    """Talks to one jobpulse server with one token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, wait_seconds: int = 10
    ) -> dict[str, Any]:
        """Run one operation; ``wait_seconds``: how long to wait for its answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        transport = HTTPXAsyncTransport(
            url=f"{self.url}/graphql", headers=headers, timeout=max(30, wait_seconds)
        )
        try:
            async with Client(transport=transport, execute_timeout=wait_seconds) as session:
                result: dict[str, Any] = await session.execute(
                    GraphQLRequest(query, variable_values=variables)
                )
                return result
        except (TransportQueryError, TransportServerError) as exc:
            raise ClientError(_describe(exc)) from exc
        except (TransportError, httpx.HTTPError, OSError) as exc:
            raise _unreachable(self.url, exc) from exc

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        payload = {"authorization": f"Bearer {self.token}"} if self.token else {}
        transport = WebsocketsTransport(
            url=_ws_url(self.url),
            init_payload=payload,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            ping_interval=20,
            pong_timeout=20,
        )
        try:
            async with Client(transport=transport) as session:
                async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
                    yield result
        except TransportQueryError as exc:
            raise ClientError(_describe(exc)) from exc
        except (TransportError, OSError) as exc:
            raise _unreachable(self.url, exc) from exc
