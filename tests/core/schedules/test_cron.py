"""``CronSpec``: cronsim in a time zone, with each wall-clock time firing at most once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import ValidationError
from core.schedules.cron import CronSpec

BERLIN = "Europe/Berlin"


def local(spec: CronSpec, ticks: list[datetime]) -> list[str]:
    return [t.astimezone(spec.zone).strftime("%m-%d %H:%M%z") for t in ticks]


def test_six_fields_step_by_the_second() -> None:
    """A six-field expression has seconds first."""
    spec = CronSpec("*/1 * * * * *", "UTC")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert [t.second for t in spec.preview(start, 3)] == [1, 2, 3]


def test_a_daily_time_in_the_spring_gap_fires_once_after_it() -> None:
    """02:30 on the night 02:00 to 03:00 does not exist fires once, at 03:00, then at 02:30 again."""
    spec = CronSpec("30 2 * * *", BERLIN)
    ticks = spec.preview(datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert local(spec, ticks) == ["03-29 03:00+0200", "03-30 02:30+0200", "03-31 02:30+0200"]


def test_the_skipped_hour_does_not_fire_twice_later() -> None:
    """Half-hourly across the spring gap: 01:30, then 03:00 once, not 03:00 for each skipped time."""
    spec = CronSpec("*/30 * * * *", BERLIN)
    ticks = spec.preview(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), 3)
    assert local(spec, ticks) == ["03-29 01:30+0100", "03-29 03:00+0200", "03-29 03:30+0200"]


def test_the_repeated_hour_fires_each_wall_clock_time_once() -> None:
    """Half-hourly across the fall-back: 02:00 and 02:30 fire in the first pass only."""
    spec = CronSpec("*/30 * * * *", BERLIN)
    ticks = spec.preview(datetime(2026, 10, 24, 23, 0, tzinfo=UTC), 5)
    assert local(spec, ticks) == [
        "10-25 01:30+0200",
        "10-25 02:00+0200",
        "10-25 02:30+0200",
        "10-25 03:00+0100",
        "10-25 03:30+0100",
    ]


def test_a_daily_time_in_the_repeated_hour_fires_once() -> None:
    """02:30 daily on the fall-back night fires once."""
    spec = CronSpec("30 2 * * *", BERLIN)
    ticks = spec.preview(datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert local(spec, ticks) == ["10-25 02:30+0200", "10-26 02:30+0100"]


@pytest.mark.parametrize(
    ("cron", "timezone", "field"),
    [
        ("61 * * * *", "UTC", "cron"),
        ("* * *", "UTC", "cron"),
        ("@hourly x", "UTC", "cron"),
        ("0 0 30 2 *", "UTC", "cron"),
        ("* * * * *", "X/Y", "timezone"),
    ],
)
def test_invalid_input_names_its_field(cron: str, timezone: str, field: str) -> None:
    """An invalid expression or an unknown zone is a ValidationError on its field."""
    with pytest.raises(ValidationError) as caught:
        CronSpec(cron, timezone)
    assert caught.value.field == field


def test_describe_says_it_in_words() -> None:
    """The preview's words come from cronsim's explain()."""
    assert CronSpec("0 3 * * *", "UTC").describe() == "At 03:00 every day"
