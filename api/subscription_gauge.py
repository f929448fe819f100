"""``OpenSubscriptions``: the open-subscriptions gauge kept from a websocket's frames.

It reads only each frame's ``type`` and ``id`` (graphql-transport-ws, and the legacy graphql-ws
protocol's names): a subscription opens with the client's ``subscribe`` and ends with either
side's ``complete`` (or an ``error``), or when the socket closes.
"""

from __future__ import annotations

import orjson
from prometheus_client import Gauge
from starlette.types import Message

__all__ = ["OpenSubscriptions"]

# Client and server message types of graphql-transport-ws and of the legacy graphql-ws protocol.
_STARTS = frozenset({"subscribe", "start"})
_CLIENT_ENDS = frozenset({"complete", "stop"})
_SERVER_ENDS = frozenset({"complete", "error"})
_NO_STARTS: frozenset[str] = frozenset()
#: the quoted types each direction is filtered on, computed once (this runs per message sent)
_RECEIVED_MARKERS = tuple(f'"{kind}"' for kind in sorted(_STARTS | _CLIENT_ENDS))
_SENT_MARKERS = tuple(f'"{kind}"' for kind in sorted(_SERVER_ENDS))


def _mentions(text: str, markers: tuple[str, ...]) -> bool:
    for marker in markers:
        if marker in text:
            return True
    return False


class OpenSubscriptions:
    """Keeps ``jobpulse_subscriptions_open`` at the number of operations open on one websocket."""

    __slots__ = ("gauge", "open_ids")

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.open_ids: set[str] = set()

    def received(self, message: Message) -> None:
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text and _mentions(text, _RECEIVED_MARKERS):
                self._track(text, _STARTS, _CLIENT_ENDS)

    def sent(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            text = message.get("text")
            if text and _mentions(text, _SENT_MARKERS):  # cheap filter: most traffic is "next"
                self._track(text, _NO_STARTS, _SERVER_ENDS)

    def _track(self, text: str, starts: frozenset[str], ends: frozenset[str]) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            return
        kind, op_id = message.get("type"), message["id"]
        if kind in starts and op_id not in self.open_ids:
            self.open_ids.add(op_id)
            self.gauge.inc()
        elif kind in ends and op_id in self.open_ids:
            self.open_ids.discard(op_id)
            self.gauge.dec()

    def close(self) -> None:
        self.gauge.dec(len(self.open_ids))
        self.open_ids.clear()
