"""The baselines' server: bare Starlette on the same uvicorn setup as ``jobpulse serve``.

* ``POST /json``: a constant JSON body (the ``{ __typename }`` answer), figure 1's baseline;
* websocket ``/idle``: accepted and held, nothing else (figure 7's baseline);
* websocket ``/push``: the client sends its key; a Redis subscriber forwards each message
  ``key|text`` on channel ``bench:push`` to that client (figure 6's baseline: fan-out without GraphQL).

Run: ``python -m bench.bare --port N [--redis URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

ANSWER = {"data": {"__typename": "Query"}}


def build(redis_url: str | None) -> Starlette:
    sockets: dict[str, WebSocket] = {}

    async def json_endpoint(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(ANSWER)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def idle(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    async def push(websocket: WebSocket) -> None:
        await websocket.accept()
        key = await websocket.receive_text()
        sockets[key] = websocket
        try:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await websocket.receive_text()
        finally:
            sockets.pop(key, None)

    async def forward() -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe("bench:push")
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            key, _, text = message["data"].decode().partition("|")
            websocket = sockets.get(key)
            if websocket is not None:
                with contextlib.suppress(Exception):
                    await websocket.send_text(text)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(forward()) if redis_url else None
        yield
        if task is not None:
            task.cancel()

    return Starlette(
        routes=[
            Route("/json", json_endpoint, methods=["GET", "POST"]),
            Route("/readyz", healthz),
            WebSocketRoute("/idle", idle),
            WebSocketRoute("/push", push),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis")
    args = parser.parse_args()
    # The same uvicorn setup as cli/main.py's _serve: uvloop and httptools (auto), websockets-sansio.
    uvicorn.run(
        build(args.redis),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # as jobpulse's default (JOBPULSE_WS_COMPRESSION)
        lifespan="on",
    )


if __name__ == "__main__":
    main()
