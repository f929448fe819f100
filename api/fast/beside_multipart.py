"""The JSON fast path in front of a view that also streams multipart subscriptions (``api.multipart``)."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry import Schema
from strawberry.asgi import GraphQL

from api.auth import Authenticator
from api.fast.documents import CheckedDocuments
from api.fast.http import GraphQLFastPath, fast_path_middleware
from api.multipart import MULTIPART_PROTOCOL, wants_stream

__all__ = ["StreamAwareFastPath", "fast_path_beside_multipart"]


class StreamAwareFastPath(GraphQLFastPath):
    """``GraphQLFastPath`` for every request but those asking for a multipart stream (the view's)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and wants_stream(scope):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def fast_path_beside_multipart(
    view: GraphQL[Any, Any], schema: Schema, authenticator: Authenticator, path: str = "/graphql"
) -> list[Middleware]:
    """``fast_path_middleware``'s choice for a view whose only streaming transport is multipart
    subscriptions: ``StreamAwareFastPath`` where that would install ``GraphQLFastPath``."""
    streams = getattr(view, "_stream_transport_map", None)
    if streams is None or set(streams) != {MULTIPART_PROTOCOL}:
        return fast_path_middleware(view, schema, authenticator, path)  # its own checks decide
    if not isinstance(schema, CheckedDocuments) or schema.config.batching_config:
        return []
    return [Middleware(StreamAwareFastPath, path=path, schema=schema, authenticator=authenticator)]
