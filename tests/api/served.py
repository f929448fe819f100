"""``server_on``: the API test server on either kind of backends (``BACKENDS``), for the v2 tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from core.backends.bus.fanout import Fanout
from core.jobtypes import JobTypeRegistry
from core.settings import Settings
from tests.api.helpers import API_KEYS, JWT_SECRET, Server, api_settings
from tests.support.jobtypes import JOB_TYPES

__all__ = ["fanout", "serve", "server_on"]

STARTUP_SECONDS = 60.0


@asynccontextmanager
async def server_on(
    request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Server]:
    """A real API server (keys for ``root`` admin, ``alice``, ``bob``) on ``request.param``'s backends."""
    if request.param == "embedded":
        settings = api_settings(tmp_path / "data", **overrides)
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        base = api_settings(tmp_path / "data").model_dump(
            include={
                "api_keys",
                "jwt_secret",
                "max_payload_bytes",
                "max_request_bytes",
                "shutdown_grace_seconds",
            }
        )
        settings = make(**{**base, "data_dir": tmp_path / "data", **overrides})
    assert settings.api_keys == API_KEYS and settings.jwt_secret == JWT_SECRET
    async with serve(settings) as running:
        yield running


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Server]:
    """``run_server``, with time to start on the distributed backends (moto creates the queues slowly)."""
    app = create_app(settings, JobTypeRegistry(list(JOB_TYPES)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (server.started or task.done()):
            assert time.monotonic() < deadline, "the server did not start"
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
            raise AssertionError("the server stopped while starting")
        yield Server(app, sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STARTUP_SECONDS)
        sock.close()


def fanout(server: Server) -> Fanout:
    """The bus's in-process fan-out (local and Redis buses both have one): its live subscriptions."""
    found: Fanout = server.service.bus.fanout  # type: ignore[attr-defined]
    return found
