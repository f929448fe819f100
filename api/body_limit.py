"""The request body limit: a body over ``max_bytes`` is answered 413 before the app reads it all.

The declared ``Content-Length`` is checked before the app runs; a body without one (chunked) is
counted as it arrives, and refused as soon as it is over, if the app has not started answering.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import body_refusal

__all__ = ["limited"]


class _BodyTooLargeError(Exception):
    pass


async def limited(
    app: ASGIApp, limit: int, declared: bytes | None, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` on an HTTP request whose body may be at most ``limit`` bytes."""
    too_large = f"request body over {limit} bytes"
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            await body_refusal(400, "invalid Content-Length")(scope, receive, send)
            return
        if length > limit:
            await body_refusal(413, too_large)(scope, receive, send)
            return
        # The server delivers exactly the declared length: nothing to count.
        await app(scope, receive, send)
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
        await app(scope, counted_receive, tracked_send)
    except _BodyTooLargeError:
        if started:
            raise
        await body_refusal(413, too_large)(scope, receive, send)
