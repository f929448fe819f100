"""``EdgeMiddleware``: jobpulse's one ASGI layer, where every request and websocket comes in.

* A request id (``api.request_id``) on every log line of an HTTP request or websocket, echoed as
  ``X-Request-ID``, and one access-log line per HTTP request (``api.access_log``).
* ``jobpulse_subscriptions_open`` kept at the operations open on websockets (``api.subscription_gauge``).
* An HTTP request body over ``max_bytes`` answered 413 (``api.body_limit``).

One pure-ASGI layer instead of three, because each layer wraps ``send`` (and sometimes
``receive``) once more per request: HTTP requests get one ``send`` wrapper (and a ``receive``
wrapper only for bodies of undeclared length); websockets get only what the gauge needs.
"""

from __future__ import annotations

import time

import structlog
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import log_request
from api.body_limit import limited
from api.request_id import REQUEST_ID_HEADER, acceptable_request_id, new_request_id
from api.subscription_gauge import OpenSubscriptions

__all__ = ["EdgeMiddleware"]

_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")


def _headers(scope: Scope) -> tuple[str | None, bytes | None]:
    """The caller's acceptable request id and the declared ``Content-Length``, in one pass."""
    request_id: str | None = None
    length: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            request_id = acceptable_request_id(value)
        elif name == b"content-length":
            length = value
    return request_id, length


class EdgeMiddleware:
    """Binds ``request_id`` (the caller's ``X-Request-ID``, or a new one) into structlog's context
    for the whole request, returns it in the response headers, and logs one line per request;
    with ``subscriptions``, gauges open subscriptions; with ``max_bytes``, limits request bodies."""

    def __init__(
        self, app: ASGIApp, *, subscriptions: Gauge | None = None, max_bytes: int | None = None
    ) -> None:
        self.app = app
        self.subscriptions = subscriptions
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _headers(scope)[0] or new_request_id()
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if self.subscriptions is None:
                await self.app(scope, receive, send)
                return
            tracker = OpenSubscriptions(self.subscriptions)

            async def tracked_receive() -> Message:
                message = await receive()
                tracker.received(message)
                return message

            async def tracked_send(message: Message) -> None:
                tracker.sent(message)
                await send(message)

            try:
                await self.app(scope, tracked_receive, tracked_send)
            finally:
                tracker.close()
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        incoming, declared = _headers(scope)
        request_id = incoming or new_request_id()
        id_header = (_HEADER, request_id.encode("latin-1"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if self.max_bytes is None:
                await self.app(scope, receive, send_with_id)
            else:
                await limited(self.app, self.max_bytes, declared, scope, receive, send_with_id)
        finally:
            try:
                log_request(scope, status, started)
            finally:
                structlog.contextvars.reset_contextvars(**tokens)
