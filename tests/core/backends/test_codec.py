"""The codec's wire format: times as exact integer microseconds, whatever their time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.backends.codec import micros
from core.cursors import from_micros, to_micros


@pytest.mark.parametrize(
    "at",
    [
        datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2030, 6, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2030, 6, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-11))),
        datetime(2030, 6, 1, 8, 30),  # naive: local time, as ``to_micros`` reads it
    ],
)
def test_micros_is_to_micros(at: datetime) -> None:
    """The codec's fast ``micros`` gives exactly ``to_micros``'s integer, and reads back equal."""
    assert micros(at) == to_micros(at)
    if at.tzinfo is not None:
        assert from_micros(micros(at)) == at
