"""A request id on every log line of an HTTP request or websocket, echoed as ``X-Request-ID``."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "RequestIdMiddleware"]

REQUEST_ID_HEADER = "X-Request-ID"
#: a caller's id is kept only if it is short and plain, so it cannot forge or flood log lines
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: probes and scrapes are logged at debug level, everything else at info
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = structlog.get_logger("jobpulse.http")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTABLE.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Binds ``request_id`` (the caller's ``X-Request-ID``, or a new one) into structlog's context
    for the whole request, returns it in the response headers, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        path: str = scope.get("path", "")
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if scope["type"] == "http":
                    emit = log.debug if path in _QUIET_PATHS or path.startswith("/static/") else log.info
                    emit(
                        "http request",
                        method=scope.get("method"),
                        path=path,
                        status=status or 500,
                        duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    )
