"""Fixtures for the API tests: a real server per test, with an admin and two users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.helpers import Server, api_settings, run_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """An API server on the embedded backends, keys for ``root`` (admin), ``alice`` and ``bob``."""
    async with run_server(api_settings(tmp_path / "data")) as running:
        yield running
