"""Hostile requests are refused with errors, and the server keeps answering."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.api.helpers import ALICE, Server

HEALTHY = "{ jobTypes { name } }"


async def assert_still_answers(server: Server) -> None:
    assert (await server.data(ALICE, HEALTHY))["jobTypes"]


def codes(body: dict[str, object]) -> list[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return [error["extensions"]["code"] for error in errors]


async def test_deep_nesting_is_refused(server: Server) -> None:
    """An operation nested deeper than JOBPULSE_MAX_QUERY_DEPTH is refused before it runs."""
    deep = "{ jobs { edges { node { " + "a { " * 12 + "b" + " }" * 12 + " } } } }"

    body = await server.graphql(ALICE, deep)

    assert body["data"] is None
    assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"])
    await assert_still_answers(server)


async def test_deep_nesting_through_fragments_is_refused(server: Server) -> None:
    """Depth counts through fragment spreads."""
    fragments = "".join(f"fragment F{i} on Query {{ jobs {{ ...F{i + 1} }} }}\n" for i in range(12))
    query = "{ ...F0 }\n" + fragments + "fragment F12 on Query { jobTypes { name } }"

    body = await server.graphql(ALICE, query)

    assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"])


async def test_nesting_too_deep_to_parse_is_a_parse_error(server: Server) -> None:
    """Nesting so deep the parser gives up is an error coded GRAPHQL_PARSE_FAILED, not a crash."""
    body = await server.graphql(ALICE, "{" + " a {" * 600 + " b" + " }" * 600 + " }")

    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    await assert_still_answers(server)


async def test_too_many_aliases_are_refused(server: Server) -> None:
    """More aliases than JOBPULSE_MAX_ALIASES are refused."""
    query = "{ " + " ".join(f"t{i}: jobTypes {{ name }}" for i in range(31)) + " }"

    body = await server.graphql(ALICE, query)

    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "aliases" in body["errors"][0]["message"]
    await assert_still_answers(server)


async def test_fragment_bomb_is_refused_quickly(server: Server) -> None:
    """Fragments that each spread the next twice (aliased) are counted without expanding them."""
    fragments = "".join(
        f"fragment F{i} on Query {{ a{i}: jobTypes {{ name }} ...F{i + 1} ...F{i + 1} }}\n" for i in range(40)
    )
    query = "{ ...F0 }\n" + fragments + "fragment F40 on Query { jobTypes { name } }"
    started = time.monotonic()

    body = await server.graphql(ALICE, query)

    assert time.monotonic() - started < 5
    assert "GRAPHQL_VALIDATION_FAILED" in codes(body)
    await assert_still_answers(server)


async def test_giant_query_is_refused_by_token_count(server: Server) -> None:
    """A document over JOBPULSE_MAX_QUERY_TOKENS is refused while parsing."""
    query = "{ " + " ".join("jobTypes { name }" for _ in range(1000)) + " }"

    body = await server.graphql(ALICE, query)

    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "tokens" in body["errors"][0]["message"]
    await assert_still_answers(server)


async def test_body_over_the_limit_by_content_length_is_413(server: Server) -> None:
    """A request declaring a body over JOBPULSE_MAX_REQUEST_BYTES is answered 413."""
    async with server.http(ALICE) as client:
        response = await client.post("/graphql", json={"query": HEALTHY, "pad": "x" * 70_000})

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    await assert_still_answers(server)


async def test_streamed_body_over_the_limit_is_413(server: Server) -> None:
    """A chunked body with no Content-Length is cut off at the limit with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ jobTypes { name } }", "pad": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    async with server.http(ALICE) as client:
        response = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )

    assert response.status_code == 413
    await assert_still_answers(server)


@pytest.mark.parametrize("body", [b"{not json", b"", b'"a string"', b"42"])
async def test_body_that_is_not_a_json_object_is_400(server: Server, body: bytes) -> None:
    """A body that is not JSON, or JSON but not an object, is answered 400."""
    async with server.http(ALICE) as client:
        response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400


async def test_batched_operations_are_refused(server: Server) -> None:
    """A JSON array of operations (batching) is answered 400."""
    async with server.http(ALICE) as client:
        response = await client.post("/graphql", json=[{"query": HEALTHY}, {"query": HEALTHY}])

    assert response.status_code == 400


async def test_logs_beyond_the_limit_are_a_validation_error(server: Server) -> None:
    """Asking for more log lines than allowed is an error coded VALIDATION."""
    job_id = await server.submit(ALICE)

    body = await server.graphql(
        ALICE, "query($id: ID!) { job(id: $id) { logs(last: 100000) { message } } }", id=job_id
    )

    assert codes(body) == ["VALIDATION"]
