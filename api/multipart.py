"""GraphQL subscriptions over HTTP multipart (Apollo Client's protocol), beside the JSON fast path.

With ``Accept: multipart/mixed;subscriptionSpec=1.0`` a ``POST /graphql`` of a subscription is
answered by strawberry's view as a ``multipart/mixed`` stream: the same schema, the same
resolvers (``api.subscriptions``, so the same no-gap guarantees as the websocket), the same
``Authorization`` check (``GraphQLView.execute_operation``). When the client goes away, Starlette's
``StreamingResponse`` sees the disconnect and cancels the stream, which closes the subscription's
generator and so its bus subscription.

Enabling that transport changes what the view answers only to requests whose ``Accept`` header
selects it: every other request is handled as before. ``StreamAwareFastPath`` therefore sends
those (and only those) past ``GraphQLFastPath`` to the view, and lets the fast path answer the rest;
it lives with the other fast paths, in ``api/fast/beside_multipart.py``.
"""

from __future__ import annotations

from starlette.types import Scope
from strawberry.http.streaming import MultipartSubscriptionTransport

__all__ = ["MULTIPART_PROTOCOL", "wants_stream"]

_TRANSPORT = MultipartSubscriptionTransport()
#: the view's stream-transport key for multipart subscriptions
MULTIPART_PROTOCOL = _TRANSPORT.protocol


def wants_stream(scope: Scope) -> bool:
    """Whether the request's ``Accept`` header asks for a multipart subscription stream."""
    for name, value in scope.get("headers", ()):
        if name == b"accept" and _TRANSPORT.accepts(value.decode("latin-1")):
            return True
    return False
