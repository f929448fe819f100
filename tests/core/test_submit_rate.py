"""``core.submit_rate``: the setting's syntax, and a limiter whose Redis is down."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import structlog
from pydantic import ValidationError

from core.errors import RateLimitedError
from core.settings import Settings
from core.submit_rate import SubmitRateLimit, parse_rate_limit


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [("100/1s", 100, 1), ("10/minute", 10, 60), ("5/2m", 5, 120), ("7 per hour", 7, 3600), ("2/d", 2, 86400)],
)
def test_rate_limits_are_read_in_short_and_long_units(text: str, amount: int, seconds: int) -> None:
    """``100/1s`` and ``10/minute`` alike become a count per period."""
    item = parse_rate_limit(text)
    assert (item.amount, item.get_expiry()) == (amount, seconds)


@pytest.mark.parametrize("text", ["abc", "10", "0/s", "10/fortnight", "-1/s"])
def test_a_malformed_rate_limit_is_refused_when_the_settings_load(text: str) -> None:
    """An invalid JOBPULSE_RATE_LIMIT fails the settings with a message naming the expected form."""
    with pytest.raises(ValidationError, match="rate_limit"):
        Settings(rate_limit=text)


def test_an_empty_rate_limit_means_none() -> None:
    """JOBPULSE_RATE_LIMIT set to nothing is no limit."""
    assert Settings(rate_limit=" ").rate_limit is None
    assert SubmitRateLimit.from_settings(Settings(rate_limit="")) is None


async def test_a_batch_larger_than_the_limit_is_refused_with_the_period() -> None:
    """A batch that could never fit says so, with the period as retryAfterSeconds."""
    limit = SubmitRateLimit.from_settings(Settings(rate_limit="3/minute"))
    assert limit is not None
    with pytest.raises(RateLimitedError) as refused:
        await limit.take("alice", 4)
    assert refused.value.retry_after_seconds == 60
    await limit.take("alice", 3)  # the refused batch took nothing


async def test_the_limit_fails_open_when_redis_does_not_answer() -> None:
    """With its Redis down, submits are let through and one warning is logged, not one per submit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    limit = SubmitRateLimit.from_settings(
        Settings(rate_limit="1/day", redis_url=f"redis://127.0.0.1:{port}/0")
    )
    assert limit is not None and limit.where == "Redis"
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await limit.take("alice")
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "let through" in warnings[0]["event"]


async def test_submits_counted_together_in_redis_get_the_answers_they_would_have_had_alone(
    redis_url: str,
) -> None:
    """Takes made while one is in flight are counted by one hit; when their sum does not fit, they
    are taken one by one, in order: 2, then 2+2+1 against a room of 3 gives yes, yes, no, yes."""
    settings = Settings(rate_limit="5/day", redis_url=redis_url, redis_channel_prefix=f"t{uuid.uuid4().hex}:")
    limit = SubmitRateLimit.from_settings(settings)
    assert limit is not None
    try:
        answers = await asyncio.gather(
            *(limit.take("alice", n) for n in (2, 2, 2, 1)), return_exceptions=True
        )
        assert [type(answer).__name__ for answer in answers] == [
            "NoneType",
            "NoneType",
            "RateLimitedError",
            "NoneType",
        ]
        with pytest.raises(RateLimitedError):
            await limit.take("alice")  # all five taken
    finally:
        await limit.close()
