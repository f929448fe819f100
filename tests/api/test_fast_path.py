"""Cached documents (parsed, limited and validated once) run on the fast path with the same answers."""

from __future__ import annotations

from typing import Any

from api.schema import JobpulseSchema
from core.ports import JobFilter
from tests.api.helpers import ALICE, Server

SUBMIT = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { status payload } ... on UserError { code } }
}
"""


def cached(server: Server) -> dict[str, Any]:
    route = next(r for r in server.app.routes if getattr(r, "path", None) == "/graphql")
    schema = route.endpoint.schema  # type: ignore[attr-defined]
    assert isinstance(schema, JobpulseSchema)
    return dict(schema._checked_documents)


async def test_second_request_takes_the_fast_path_with_the_same_answer(server: Server) -> None:
    """A document seen once is cached, and its second request gets the same answer."""
    query = "{ jobTypes { name } }"
    first = await server.graphql(ALICE, query)
    assert query in cached(server)

    assert await server.graphql(ALICE, query) == first


async def test_mutation_results_and_user_errors_on_the_fast_path(server: Server) -> None:
    """Cached mutations answer with their results and user errors as the first request did."""
    payload = {"n": [1, {"deep": True}], "s": "x"}
    for _ in range(2):
        body = await server.graphql(ALICE, SUBMIT, input={"type": "noop", "payload": payload})
        assert body["data"]["submitJob"] == {"__typename": "Job", "status": "PENDING", "payload": payload}
    for _ in range(2):
        body = await server.graphql(ALICE, SUBMIT, input={"type": "nope", "payload": {}})
        assert body["data"]["submitJob"]["__typename"] == "UserError"


async def test_variable_errors_on_the_fast_path_are_coded_as_on_the_full_path(server: Server) -> None:
    """A bad variable gets the same coded error from the cached document as from the full path."""
    bodies = [await server.graphql(ALICE, SUBMIT, input={"type": 1}) for _ in range(2)]
    assert bodies[0] == bodies[1]
    assert bodies[0]["errors"][0]["extensions"]["code"]


async def test_wrong_token_never_executes_a_cached_document(server: Server) -> None:
    """A cached document sent with a wrong token is refused unauthenticated and runs nothing."""
    await server.graphql(ALICE, SUBMIT, input={"type": "noop", "payload": {}})
    body = await server.graphql("wrong-token", SUBMIT, input={"type": "noop", "payload": {}})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await server.service.store.count_jobs(JobFilter()) == 1


async def test_refused_documents_are_not_cached(server: Server) -> None:
    """A document refused by validation (too deep) is never cached."""
    deep = "{ jobs { edges { node { " + "a { " * 12 + "b" + " }" * 12 + " } } } }"
    for _ in range(2):
        body = await server.graphql(ALICE, deep)
        assert body["data"] is None
    assert deep not in cached(server)


async def test_a_cached_mutation_is_still_refused_over_get(server: Server) -> None:
    """A mutation cached from a POST is still refused when sent over GET."""
    query = 'mutation { cancelJob(id: "x") { __typename } }'
    await server.graphql(ALICE, query)
    assert query in cached(server)
    async with server.http(ALICE) as client:
        response = await client.get("/graphql", params={"query": query})
    assert response.status_code in (400, 405)
