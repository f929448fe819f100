"""A stand-in ``JobContext`` for calling handlers directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.blobs import BlobStore
from core.models import Job, JSONValue, LogLevel
from core.settings import Settings


class RecordingContext:
    """Records progress and log lines instead of writing them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._job = Job(id="job-1", type="test", owner="tester", payload={})
        self.reports: list[tuple[float, str | None]] = []
        self.lines: list[tuple[LogLevel, str]] = []

    @property
    def job(self) -> Job:
        return self._job

    @property
    def attempt(self) -> int:
        return 1

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def blobs(self) -> BlobStore | None:
        return None

    async def progress(self, percent: float, message: str | None = None) -> None:
        self.reports.append((percent, message))

    async def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self.lines.append((level, message))

    async def dependency_results(self) -> dict[str, JSONValue]:
        return {}


@pytest.fixture
def make_ctx(tmp_path: Path) -> Any:
    """``make_ctx(**settings)``: a recording context with these settings."""

    def make(**overrides: Any) -> RecordingContext:
        return RecordingContext(Settings(data_dir=tmp_path, **overrides))

    return make
