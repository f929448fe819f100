"""The differential harness of ``api.fast``: the same requests through the fast and the stock path.

``fast_and_stock`` sends the same calls, in the same order, to two real servers on fresh backends
of the same kind: one with the fast paths (``create_app``'s default) and one built with
``fast_paths=False`` (strawberry's stock schema and view throughout). Each call is sent twice:
the first run parses, limits, validates and caches its document, the second takes the fast path
where there is one. The answers come back as ``(status, content type, body bytes)``, with what
the store holds after them, so a test asserts the two sides are identical byte for byte.
Selections leave out what differs between any two servers by nature (ids, times).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import orjson
import pytest

from api.schema import FastSchema
from core.ports import JobFilter
from core.settings import Settings
from tests.api.helpers import ALICE, Server, run_server

#: ``(status, content type, body)`` of one HTTP answer
Answer = tuple[int, str | None, bytes]


@dataclass(frozen=True)
class Call:
    """One GraphQL request: a query, its variables (or any JSON body fields) and a bearer token."""

    query: str
    variables: Any = None
    token: str | None = ALICE
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Answers:
    """What one server answered to the calls (each twice), and the jobs it stored."""

    answers: list[tuple[Answer, Answer]]
    stored: list[str]


async def _send(server: Server, call: Call) -> Answer:
    headers = {"Content-Type": "application/json"}
    if call.token is not None:
        headers["Authorization"] = f"Bearer {call.token}"
    body = orjson.dumps({"query": call.query, "variables": call.variables, **call.fields})
    async with server.http() as client:
        response = await client.post("/graphql", content=body, headers=headers)
    return response.status_code, response.headers.get("content-type"), response.content


def schema_of(server: Server) -> Any:
    """The schema behind ``server``'s ``/graphql`` view."""
    route = next(r for r in server.app.routes if getattr(r, "path", None) == "/graphql")
    return route.endpoint.schema  # type: ignore[attr-defined]


async def _answers(server: Server, calls: Sequence[Call]) -> Answers:
    answers = [(await _send(server, call), await _send(server, call)) for call in calls]
    stored = sorted(
        repr((j.owner, j.type, j.payload, j.priority, j.max_attempts, j.timeout_seconds, j.idempotency_key))
        for j in await server.service.store.list_jobs(JobFilter(), 1000, None)
    )
    return Answers(answers, stored)


async def fast_and_stock(settings: Callable[[str], Settings], calls: Sequence[Call]) -> tuple[Answers, Answers]:
    """The answers of a fast server and of a stock one (``settings(name)`` gives each its backends)."""
    async with run_server(settings("fast")) as server:
        assert isinstance(schema_of(server), FastSchema)
        fast = await _answers(server, calls)
    async with run_server(settings("stock"), fast_paths=False) as server:
        assert not isinstance(schema_of(server), FastSchema)
        stock = await _answers(server, calls)
    return fast, stock


_versions = itertools.count()


def fake_version(monkeypatch: pytest.MonkeyPatch, distribution: str) -> str:
    """Make ``distribution`` look installed at a version outside every tested range; return it."""
    fake = f"999.{time.monotonic_ns()}.{next(_versions)}"
    real = metadata.version

    def version(name: str) -> str:
        return fake if name == distribution else real(name)

    monkeypatch.setattr(metadata, "version", version)
    return fake
