"""The REST tests run each behaviour on the embedded and the distributed backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.helpers import Server
from tests.api.served import server_on
from tests.support.services import BACKENDS


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """A real API server on the embedded, then the distributed backends."""
    async with server_on(request, tmp_path) as running:
        yield running
