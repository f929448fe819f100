"""``configure_logging``: JSON lines rendered with orjson."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import structlog

from core.logs import configure_logging


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    config = structlog.get_config()
    yield
    structlog.configure(**config)


def test_json_lines_are_rendered_with_orjson(
    restore_structlog: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON log line is orjson's rendering of the event, odd values included, and parses back."""
    rendered: list[object] = []
    dumps = orjson.dumps

    def spying(value: object, **kwargs: object) -> bytes:
        rendered.append(value)
        return dumps(value, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(orjson, "dumps", spying)
    configure_logging("INFO", "json")
    structlog.get_logger("t").info("job started", at=datetime(2026, 1, 2, tzinfo=UTC), odd={1: {2}})

    line = json.loads(capsys.readouterr().err)
    assert (len(rendered), line["event"], line["at"], line["odd"]) == (
        1,
        "job started",
        "2026-01-02T00:00:00+00:00",
        {"1": "{2}"},
    )
