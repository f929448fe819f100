"""A start-up error raised inside the app's lifespan (after the wait for backends) is one line too."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette

from cli.startup import LifespanGuard, bind_listener
from core.errors import BackendUnavailableError


@asynccontextmanager
async def _failing(app: Starlette) -> AsyncIterator[None]:
    raise BackendUnavailableError("MongoDB index creation failed: gone")
    yield  # pragma: no cover


def test_a_lifespan_start_up_error_is_kept_and_uvicorn_logs_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn does not start and logs nothing; the error itself comes out, for the one-line exit."""
    app = Starlette(lifespan=_failing)
    guard = LifespanGuard(app)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    with caplog.at_level(logging.DEBUG, logger="uvicorn.error"), pytest.raises(BackendUnavailableError):
        guard.run(server, [bind_listener("127.0.0.1", 0)])
    assert not server.started
    assert [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"] == []
