"""``SubmitRateLimit``: ``JOBPULSE_RATE_LIMIT``, how many jobs each token subject may submit per period.

Held by the ``limits`` library's sliding-window counter: in Redis when ``JOBPULSE_REDIS_URL`` is
set (one count for every API process), in memory otherwise (the embedded mode's one process). A
batch takes all its jobs' worth at once or nothing. If Redis does not answer, submits are let
through (fail open) with a warning at most every ``WARN_EVERY_SECONDS``: a limiter that stops
all work while its counter is down protects nothing.

In Redis, a subject's submits that come while one of its counts is in flight are counted together,
by one hit of their summed cost (``GroupCommit``): one round trip for many submits under load. A
summed hit that is refused is taken again submit by submit, in order, so each gets the answer it
would have had alone.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import ConnectionPool

from core.errors import RateLimitedError
from core.group_commit import GroupCommit
from core.settings import Settings

__all__ = ["SubmitRateLimit", "parse_rate_limit"]

log = structlog.get_logger("jobpulse.ratelimit")

WARN_EVERY_SECONDS = 30.0
#: most submits counted by one Redis hit
HIT_BATCH = 256
#: ``100/1s``'s short units, as ``limits`` spells them
_UNITS = {"s": "second", "sec": "second", "m": "minute", "min": "minute", "h": "hour", "d": "day"}
_SHORT = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_rate_limit(text: str) -> RateLimitItem:
    """``100/1s``, ``10/minute``, ``5 per 2 seconds`` as a ``limits`` item; ``ValueError`` if not one."""
    match = _SHORT.match(text)
    if match is None:
        raise ValueError(f"expected COUNT/PERIOD such as 100/1s or 10/minute, got {text!r}")
    count, multiple, unit = match.groups()
    unit = _UNITS.get(unit.lower(), unit.lower())
    try:
        item = parse(f"{count}/{multiple or 1} {unit}")
    except ValueError:
        unknown = match.group(3)
        raise ValueError(f"unknown period {unknown!r} in {text!r}; use s, m, h, d or their names") from None
    if item.amount < 1:
        raise ValueError(f"the count must be at least 1, got {text!r}")
    return item


class SubmitRateLimit:
    """The submit limit of one API process; ``take`` before a submission creates anything."""

    def __init__(
        self, item: RateLimitItem, storage: Storage, where: str, pool: ConnectionPool | None = None
    ) -> None:
        self.item = item
        self.where = where
        self._storage = storage
        self._pool = pool
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._warned_at = -math.inf
        #: called with the number of jobs of each refused submit (the API's metric)
        self.refused_listeners: list[Callable[[int], None]] = []
        self._hits: GroupCommit[str, int, None] | None = None
        if pool is not None:  # a round trip a count: share them (in memory a count costs less than that)
            self._hits = GroupCommit(self._hit_together, HIT_BATCH)

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmitRateLimit | None:
        """The limit ``settings`` ask for, in Redis when there is one; ``None`` when unset."""
        if not settings.rate_limit:
            return None
        item = parse_rate_limit(settings.rate_limit)
        if settings.redis_url:
            # A pool of our own, so that ``close`` can let its connections go at shutdown.
            pool = ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0)
            storage: Storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=f"{settings.redis_channel_prefix}submit-rate",
                connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis-py's client
            )
            return cls(item, storage, "Redis", pool)
        return cls(item, MemoryStorage(), "memory")

    async def close(self) -> None:
        """Let the Redis connections go (nothing to do in memory)."""
        if self._hits is not None:
            await self._hits.drain()
        if self._pool is not None:
            await self._pool.disconnect()

    def describe(self) -> str:
        """e.g. ``100 per 1 second per token subject, counted in Redis``."""
        return f"{self.item} per token subject, counted in {self.where}"

    async def take(self, subject: str, count: int = 1) -> None:
        """Count ``count`` submits of ``subject``; ``RateLimitedError`` (nothing counted) if over."""
        if count < 1:
            return
        try:
            await self._take(subject, count)
        except RateLimitedError:
            for listener in self.refused_listeners:
                listener(count)
            raise

    async def _take(self, subject: str, count: int) -> None:
        if count > self.item.amount:
            period = float(self.item.get_expiry())
            raise RateLimitedError(
                f"{count} jobs in one call is more than the limit of {self.item}; send smaller batches",
                retry_after_seconds=period,
            )
        if self._hits is not None:
            await self._hits.run(subject, count)
            return
        refused = await self._hit(subject, count)
        if refused is not None:
            raise refused

    async def _hit(self, subject: str, count: int) -> RateLimitedError | None:
        """Count ``count`` submits of ``subject``: ``None`` if taken (or not counted: fail open)."""
        try:
            if await self._limiter.hit(self.item, subject, cost=count):
                return None
            stats = await self._limiter.get_window_stats(self.item, subject)
        except Exception as exc:  # the counter is down: let work through (fail open)
            self._warn(exc)
            return None
        wait = max(0.001, stats.reset_time - time.time())
        return RateLimitedError(
            f"more than {self.item} submitted; try again in {wait:.1f} s", retry_after_seconds=wait
        )

    async def _hit_together(self, subject: str, counts: list[int]) -> list[None | BaseException]:
        """``GroupCommit``'s batch: one hit for all of ``counts`` if they fit, else one each, in order
        (a count as big as one just refused is refused with it, without asking again)."""
        if (
            len(counts) > 1
            and sum(counts) <= self.item.amount
            and await self._hit(subject, sum(counts)) is None
        ):
            return [None] * len(counts)
        outcomes: list[None | BaseException] = []
        refused: RateLimitedError | None = None
        refused_count = math.inf
        for count in counts:
            if count < refused_count:
                answer = await self._hit(subject, count)
                if answer is not None:
                    refused, refused_count = answer, count
                outcomes.append(answer)
            else:
                outcomes.append(refused)
        return outcomes

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "submit rate limit not checked: its storage did not answer; submits are let through",
                where=self.where,
                error=str(exc) or type(exc).__name__,
            )
