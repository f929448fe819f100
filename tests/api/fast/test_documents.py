"""Cached documents (parsed, limited and validated once) run on the fast path with the same answers."""

from __future__ import annotations

from api.schema import FastSchema
from core.ports import JobFilter
from tests.api.fast.conftest import ServerSettings
from tests.api.fast.harness import Call, fast_and_stock, schema_of
from tests.api.helpers import ADMIN, ALICE, BOB, Server

SUBMIT = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { status payload } ... on UserError { code } }
}
"""


def cached(server: Server, query: str) -> bool:
    schema = schema_of(server)
    assert isinstance(schema, FastSchema)
    return schema.checked_document(query) is not None


async def test_second_request_takes_the_fast_path_with_the_same_answer(server: Server) -> None:
    """A query that passed once is kept, and its second run answers as the first."""
    query = "{ jobTypes { name } }"
    first = await server.graphql(ALICE, query)
    assert cached(server, query)

    assert await server.graphql(ALICE, query) == first


async def test_mutation_results_and_user_errors_on_the_fast_path(server: Server) -> None:
    """Mutations keep their results and user errors when they run from a kept document."""
    payload = {"n": [1, {"deep": True}], "s": "x"}
    for _ in range(2):
        body = await server.graphql(ALICE, SUBMIT, input={"type": "noop", "payload": payload})
        assert body["data"]["submitJob"] == {"__typename": "Job", "status": "PENDING", "payload": payload}
    for _ in range(2):
        body = await server.graphql(ALICE, SUBMIT, input={"type": "nope", "payload": {}})
        assert body["data"]["submitJob"]["__typename"] == "UserError"


async def test_variable_errors_on_the_fast_path_are_coded_as_on_the_full_path(server: Server) -> None:
    """Bad variables get the same coded errors from a kept document as on the full path."""
    bodies = [await server.graphql(ALICE, SUBMIT, input={"type": 1}) for _ in range(2)]
    assert bodies[0] == bodies[1]
    assert bodies[0]["errors"][0]["extensions"]["code"]


async def test_wrong_token_never_executes_a_cached_document(server: Server) -> None:
    """A wrong token is refused before a kept document runs, and nothing is written."""
    await server.graphql(ALICE, SUBMIT, input={"type": "noop", "payload": {}})
    body = await server.graphql("wrong-token", SUBMIT, input={"type": "noop", "payload": {}})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await server.service.store.count_jobs(JobFilter()) == 1


async def test_refused_documents_are_not_cached(server: Server) -> None:
    """A document the limits refuse is never kept."""
    deep = "{ jobs { edges { node { " + "a { " * 12 + "b" + " }" * 12 + " } } } }"
    for _ in range(2):
        body = await server.graphql(ALICE, deep)
        assert body["data"] is None
    assert not cached(server, deep)


async def test_a_cached_mutation_is_still_refused_over_get(server: Server) -> None:
    """A kept mutation is still refused over GET, as the full path refuses it."""
    query = 'mutation { cancelJob(id: "x") { __typename } }'
    await server.graphql(ALICE, query)
    assert cached(server, query)
    async with server.http(ALICE) as client:
        response = await client.get("/graphql", params={"query": query})
    assert response.status_code in (400, 405)


QUERIES = [
    "{ __typename }",
    "{ jobTypes { name description maxAttempts timeoutSeconds payloadSchema } }",
    "{ jobs(first: 5) { totalCount edges { node { type status payload } } pageInfo { hasNextPage } } }",
    '{ jobs(filter: {status: [PENDING], type: "noop"}, first: 2) { totalCount } }',
    "{ jobs(first: -1) { totalCount } }",
    '{ job(id: "missing") { id } }',
    "{ stats { total } }",
    'mutation { cancelJob(id: "missing") { __typename ... on UserError { code message field } } }',
    'mutation { retryJob(id: "missing") { __typename ... on UserError { code message field } } }',
    'mutation { redriveDeadLetters(type: "noop") }',
    "{ nope }",
    "{ jobTypes { name }",
]


async def test_fast_and_stock_queries_answer_alike(server_settings: ServerSettings) -> None:
    """Queries and mutations, answered or refused, get the same bytes from kept documents as on the stock path."""
    submit = Call(SUBMIT, {"input": {"type": "noop", "payload": {"n": 1}}})
    calls = [submit, *(Call(q, None, token) for token in (ALICE, BOB, ADMIN) for q in QUERIES)]
    calls.append(Call("query A { __typename } query B { jobTypes { name } }", fields={"operationName": "B"}))
    calls.append(Call("query A { __typename } query B { jobTypes { name } }", fields={"operationName": "C"}))
    fast, stock = await fast_and_stock(server_settings, calls)
    assert fast.answers == stock.answers
    assert fast.stored == stock.stored
