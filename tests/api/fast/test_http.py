"""``GraphQLFastPath`` answers exactly as strawberry's view: same status, headers and JSON.

Every request is sent three times to one real server: with the fast path switched off (the
view's full path, which also caches a document that passes), off again (the view with the
document cached), then on. The three answers must match, and the fast path must have answered
the third exactly when it should (cached single operations POSTed as JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from api.fast.http import GraphQLFastPath, SubResponse
from api.view import GraphQLView
from core.ports import JobFilter
from tests.api.helpers import ADMIN, ALICE, Server, make_jwt

SUBMIT = (
    "mutation Submit($input: SubmitJobInput!) { submitJob(input: $input) "
    "{ __typename ... on Job { type status payload priority maxAttempts owner } "
    "... on UserError { code message field } } }"
)
SUBMIT_MANY = (
    "mutation SubmitMany($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) "
    "{ __typename ... on Job { type status payload } ... on UserError { code message field } } }"
)
TWO_OPERATIONS = "query Types { jobTypes { name } } query Name { __typename }"
DEEP = "{ jobs { edges { node { " + "a { " * 12 + "b" + " }" * 12 + " } } } }"


class Switch:
    """Turns the fast path off and on, and counts the requests it answered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.enabled = True
        self.answered = 0
        original = GraphQLFastPath.answer

        async def answer(
            fast: GraphQLFastPath, request: Request, body: bytes, authorization: bytes | None
        ) -> Response | None:
            if not self.enabled:
                return None
            response = await original(fast, request, body, authorization)
            self.answered += response is not None
            return response

        monkeypatch.setattr(GraphQLFastPath, "answer", answer)


@pytest.fixture
def switch(monkeypatch: pytest.MonkeyPatch) -> Switch:
    return Switch(monkeypatch)


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    token: str | None = ALICE
    content_type: str = "application/json"
    fast: bool = True  # whether the fast path answers it once its document is cached
    warm: bool = False  # first sent with a good token: a refused caller never caches a document


def op(query: str, token: str | None = ALICE, fast: bool = True, **fields: Any) -> Case:
    body = orjson.dumps({"query": query, **fields})
    return Case(query[:40], body, token=token, fast=fast, warm=token not in (ALICE, ADMIN))


def cases() -> list[Case]:
    expired = make_jwt("alice", expires_in=-60)
    noop = {"type": "noop", "payload": {"n": [1, {"deep": True}], "s": "é"}}
    return [
        op("{ __typename }"),
        op("{ jobTypes { name } }"),
        op("{ jobTypes { name } }", variables=None, operationName=None, extensions=None),
        op("{ jobTypes { name } }", extensions={"tracing": True}),
        op(SUBMIT, variables={"input": noop}),
        op(SUBMIT, variables={"input": {**noop, "priority": 5, "maxAttempts": 2, "delaySeconds": 0}}),
        op(SUBMIT, variables={"input": {"type": "nope", "payload": {}}}),  # UserError
        op(SUBMIT, variables={"input": {"type": "noop", "payload": {"x": "y" * 5000}}}),  # too large
        op(SUBMIT, variables={"input": {"type": 1}}),  # invalid variables
        op(SUBMIT, variables={"input": {"type": "noop", "payload": {}, "bogus": 1}}),
        op(SUBMIT, variables={}),  # missing variable
        op(SUBMIT),
        op(SUBMIT_MANY, variables={"inputs": [noop, {"type": "nope", "payload": {}}, noop]}),
        op(SUBMIT_MANY, variables={"inputs": []}),
        op(SUBMIT, token=None, variables={"input": noop}),  # no token
        op(SUBMIT, token="wrong-token", variables={"input": noop}),
        op("{ jobTypes { name } }", token=expired),  # expired: refused by the resolver
        op('mutation { redriveDeadLetters(type: "noop") }'),  # FORBIDDEN for a user
        op('mutation { redriveDeadLetters(type: "noop") }', token=ADMIN),
        op('mutation { cancelJob(id: "missing") { __typename ... on UserError { code } } }'),
        op('{ job(id: "missing") { id } }'),
        op("{ jobs(first: -1) { edges { node { id } } } }"),  # a coded error with a path
        op(TWO_OPERATIONS, operationName="Types"),
        op(TWO_OPERATIONS, operationName="Name"),
        op(TWO_OPERATIONS, operationName="Missing", fast=False),  # unknown operationName
        op(TWO_OPERATIONS, fast=False),  # no operationName for two operations
        op(TWO_OPERATIONS, operationName=3, fast=False),
        op('subscription { jobEvents(type: "noop") { type } }', fast=False),
        op(DEEP, fast=False),  # over the depth limit: never cached
        op("{ jobTypes { name }", fast=False),  # syntax error
        op("{ nope }", fast=False),  # validation error
        op("{ __typename }", variables=[1], fast=False),
        op("{ __typename }", extensions="x", fast=False),
        op("{ __typename }", token="wrong-token"),
        Case(
            "charset",
            orjson.dumps({"query": "{ __typename }"}),
            content_type="application/json; charset=utf-8",
        ),
        Case("text", orjson.dumps({"query": "{ __typename }"}), content_type="text/plain", fast=False),
        Case("no json", b"{not json", fast=False),
        Case("array", orjson.dumps([{"query": "{ __typename }"}]), fast=False),
        Case("string", orjson.dumps("{ __typename }"), fast=False),
        Case("no query", orjson.dumps({"variables": {}}), fast=False),
        Case("query not text", orjson.dumps({"query": 1}), fast=False),
    ]


async def _post(server: Server, case: Case) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": case.content_type, "X-Request-ID": "same-id"}
    if case.token is not None:
        headers["Authorization"] = f"Bearer {case.token}"
    async with server.http() as client:
        response = await client.post("/graphql", content=case.body, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    body = orjson.loads(response.content) if kept.get("content-type") == "application/json" else response.text
    return response.status_code, kept, body


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
async def test_fast_path_answers_as_the_view(server: Server, switch: Switch, case: Case) -> None:
    """Each request gets the same status, headers and body from the fast path as from the view."""
    switch.enabled = False
    if case.warm:
        await _post(server, Case(case.name, case.body))
    full = await _post(server, case)
    cached = await _post(server, case)
    switch.enabled = True
    fast = await _post(server, case)

    assert switch.answered == (1 if case.fast else 0)
    assert fast == cached == full


async def test_fast_mutations_store_what_the_view_stores(server: Server, switch: Switch) -> None:
    """A mutation on the fast path writes what the view's writes (one job for one idempotency key)."""
    noop = {"type": "noop", "payload": {"k": 1}, "idempotencyKey": "once"}
    bodies = []
    for enabled in (False, True, True):
        switch.enabled = enabled
        bodies.append(await server.data(ALICE, SUBMIT.replace("payload", "id payload"), input=noop))
    assert switch.answered == 2
    assert bodies[0] == bodies[1] == bodies[2]  # the idempotency key returns the first job each time
    assert await server.service.store.count_jobs(JobFilter()) == 1


async def test_a_body_in_chunks_is_read_whole(server: Server, switch: Switch) -> None:
    """A body sent in chunks is read whole and answered on the fast path."""
    body = orjson.dumps({"query": "{ __typename }"})

    async def chunks() -> Any:
        for i in range(0, len(body), 5):
            yield body[i : i + 5]

    await server.data(ALICE, "{ __typename }")
    answered = switch.answered
    async with server.http(ALICE) as client:
        response = await client.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
    assert switch.answered == answered + 1


async def test_other_routes_and_methods_pass_through(server: Server, switch: Switch) -> None:
    """GET requests and other paths go on to the app untouched."""
    for _ in range(2):
        await server.data(ALICE, "{ __typename }")
    async with server.http(ALICE) as client:
        get = await client.get("/graphql", params={"query": "{ __typename }"})
        health = await client.post("/healthz", json={"query": "{ __typename }"})
    assert get.json() == {"data": {"__typename": "Query"}}
    assert health.status_code == 405
    assert switch.answered == 1  # only the second `server.data` call, once its document was cached


async def test_the_sub_response_is_the_views(server: Server) -> None:
    """The fast path's sub-response starts as the view's and takes headers the same way."""
    route = next(r for r in server.app.routes if getattr(r, "path", None) == "/graphql")
    view = route.endpoint  # type: ignore[attr-defined]
    assert isinstance(view, GraphQLView)
    theirs, ours = await view.get_sub_response(Request({"type": "http"})), SubResponse()
    assert (ours.status_code, ours.raw_headers, ours.background, ours.body) == (
        theirs.status_code,
        theirs.raw_headers,
        theirs.background,
        theirs.body,
    )
    ours.headers["x-set"] = "by a resolver"
    assert ours.raw_headers == [(b"x-set", b"by a resolver")]
