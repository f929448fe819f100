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


def test_secret_fields_and_jwts_never_reach_a_line(
    restore_structlog: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fields named like a secret or a payload are replaced, JWTs cut out of text, long text cut short."""
    configure_logging("INFO", "json")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWl0"
    structlog.get_logger("t").warning(
        "odd", token="tok-1", job_token="tok-2", payload={"n": 1}, note=f"bearer {jwt}", long="x" * 5000
    )
    line = json.loads(capsys.readouterr().err)
    assert (line["token"], line["job_token"], line["payload"], line["note"], len(line["long"])) == (
        "[redacted]",
        "[redacted]",
        "[redacted]",
        "bearer [jwt]",
        501,
    )
