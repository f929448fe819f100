"""Pub/sub replies taken from hiredis's parse buffer without a wait each (the Redis bus's fast path).

``PubSub.parse_response`` waits (with a timeout) for one reply; a socket read usually brings many,
which hiredis has parsed into its buffer. Taking them from there skips a timeout and a coroutine
chain per message. The promise is ``api.fast``'s: the same replies in the same order as
``parse_response`` would give them. It reads redis-py's private ``_parser._reader`` and
``NOT_ENOUGH_DATA``, so it runs only on the redis and hiredis versions it was tested on
(``core.pins``); elsewhere, or without hiredis, there is nothing to take and every reply goes
through ``parse_response``. ``tests/api/fast/test_hiredis_buffer.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from redis.asyncio.client import PubSub

from core.pins import is_tested

__all__ = ["Drain", "buffered_replies"]

#: ``drain(limit)``: up to ``limit`` replies already parsed, without awaiting
Drain = Callable[[int], Iterator[Any]]

LIBRARIES = ("redis", "hiredis")


def _nothing(limit: int) -> Iterator[Any]:
    return iter(())


def buffered_replies(pubsub: PubSub) -> Drain:
    """The drain of ``pubsub``'s current connection: its parsed replies, or none (the stock path)."""
    if not is_tested(*LIBRARIES):
        return _nothing
    from redis._parsers.hiredis import NOT_ENOUGH_DATA

    reader = getattr(getattr(pubsub.connection, "_parser", None), "_reader", None)
    gets = getattr(reader, "gets", None)
    if gets is None:
        return _nothing

    def drain(limit: int) -> Iterator[Any]:
        for _ in range(limit):
            response = gets()
            if response is NOT_ENOUGH_DATA:
                return
            if isinstance(response, Exception):
                raise response  # a protocol or connection error: the reader reconnects
            yield response

    return drain
