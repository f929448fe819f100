"""The examples run against a real ``jobpulse serve`` on both backends (as tests/js does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.js.conftest import serve_on
from tests.support.process import JobpulseProcess
from tests.support.services import BACKENDS


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobpulseProcess]:
    """``jobpulse serve`` (API and workers) on the embedded, then the distributed backends."""
    process = serve_on(request, tmp_path)
    yield process
    process.terminate()
