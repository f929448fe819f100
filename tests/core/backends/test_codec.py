"""The codec's wire format: times as exact integer microseconds, whatever their time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.cursors import from_micros, to_micros


def reference_micros(at: datetime) -> int:
    """The slow, obviously right reading: to UTC, then days, seconds and microseconds."""
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


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
def test_to_micros_is_exact_whatever_the_time_zone(at: datetime) -> None:
    """The fast ``to_micros`` gives exactly the reference integer, and ``from_micros`` reads it back."""
    assert to_micros(at) == reference_micros(at)
    if at.tzinfo is not None:
        assert from_micros(to_micros(at)) == at
        assert from_micros(to_micros(at)).tzinfo is UTC
