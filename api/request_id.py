"""jobpulse's one ASGI middleware: request ids, the access log, the subscription gauge, the body limit.

* A request id on every log line of an HTTP request or websocket, echoed as ``X-Request-ID``, and
  one access-log line per HTTP request.
* ``jobpulse_subscriptions_open`` kept at the operations open on websockets (``OpenSubscriptions``).
* An HTTP request body over ``max_bytes`` is answered 413: the declared ``Content-Length`` is
  checked before the app runs; a body without one (chunked) is counted as it arrives.

One pure-ASGI layer instead of three: HTTP requests get one ``send`` wrapper (and a ``receive``
wrapper only for bodies of undeclared length); websockets get only what the gauge needs.
"""

from __future__ import annotations

import itertools
import os
import re
import time

import structlog
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import body_refusal
from api.metrics import OpenSubscriptions

__all__ = ["REQUEST_ID_HEADER", "RequestIdMiddleware"]

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
#: a caller's id is kept only if it is short and plain, so it cannot forge or flood log lines
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

log = structlog.get_logger("jobpulse.http")


_PROCESS = os.urandom(8).hex()
_issued = itertools.count()


def _new_id() -> str:
    """32 hex digits, unique without a system call per request: 64 random bits per process (made
    at import), then a counter. Every request pays for this; ``uuid4().hex`` cost 3.6 µs."""
    return f"{_PROCESS}{next(_issued):016x}"


class _BodyTooLargeError(Exception):
    pass


def _headers(scope: Scope) -> tuple[str | None, bytes | None]:
    """The caller's acceptable request id and the declared ``Content-Length``, in one pass."""
    request_id: str | None = None
    length: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            request_id = text if _ACCEPTABLE.fullmatch(text) else None
        elif name == b"content-length":
            length = value
    return request_id, length


class RequestIdMiddleware:
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
        request_id = _headers(scope)[0] or _new_id()
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
        request_id = incoming or _new_id()
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
            await self._limited(scope, receive, send_with_id, declared)
        finally:
            try:
                path: str = scope.get("path", "")
                # Debug, not info: one line per request cost 9% of a `{ __typename }` and 5% of a
                # submit (bench figs 1-2) for what a proxy's access log or /metrics already gives.
                # Failures are still logged where they happen; JOBPULSE_LOG_LEVEL=DEBUG shows these.
                log.debug(
                    "http request",
                    method=scope.get("method"),
                    path=path,
                    status=status or 500,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
            finally:
                structlog.contextvars.reset_contextvars(**tokens)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, declared: bytes | None) -> None:
        """The app behind the body-size limit (when there is one)."""
        limit = self.max_bytes
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = f"request body over {limit} bytes"
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await body_refusal(400, "invalid Content-Length", scope["path"])(scope, receive, send)
                return
            if length > limit:
                await body_refusal(413, too_large, scope["path"])(scope, receive, send)
                return
            # The server delivers exactly the declared length: nothing to count.
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLargeError:
            if started:
                raise
            await body_refusal(413, too_large, scope["path"])(scope, receive, send)
