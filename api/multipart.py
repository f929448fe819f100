"""GraphQL subscriptions over HTTP multipart (Apollo Client's protocol), beside the JSON fast path.

With ``Accept: multipart/mixed;subscriptionSpec=1.0`` a ``POST /graphql`` of a subscription is
answered by strawberry's view as a ``multipart/mixed`` stream: the same schema, the same
resolvers (``api.subscriptions``, so the same no-gap guarantees as the websocket), the same
``Authorization`` check (``GraphQLView.execute_operation``). When the client goes away, Starlette's
``StreamingResponse`` sees the disconnect and cancels the stream, which closes the subscription's
generator and so its bus subscription.

Enabling that transport changes what the view answers only to requests whose ``Accept`` header
selects it: every other request is handled as before. ``StreamAwareFastPath`` therefore sends
those (and only those) past ``GraphQLFastPath`` to the view, and lets the fast path answer the rest.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.http.streaming import MultipartSubscriptionTransport

from api.auth import Authenticator
from api.fast.documents import CheckedDocuments
from api.fast.http import GraphQLFastPath, fast_path_middleware

__all__ = ["StreamAwareFastPath", "fast_path_beside_multipart", "wants_stream"]

_TRANSPORT = MultipartSubscriptionTransport()


def wants_stream(scope: Scope) -> bool:
    """Whether the request's ``Accept`` header asks for a multipart subscription stream."""
    for name, value in scope.get("headers", ()):
        if name == b"accept" and _TRANSPORT.accepts(value.decode("latin-1")):
            return True
    return False


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
    if streams is None or set(streams) != {_TRANSPORT.protocol}:
        return fast_path_middleware(view, schema, authenticator, path)  # its own checks decide
    if not isinstance(schema, CheckedDocuments) or schema.config.batching_config:
        return []
    return [Middleware(StreamAwareFastPath, path=path, schema=schema, authenticator=authenticator)]
