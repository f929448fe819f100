"""Bad input to the REST routes: a clear 4xx with ``{"error": {"code", "message", "field"}}``, nothing created."""

from __future__ import annotations

from typing import Any

import httpx

from core.models import Principal
from core.ports import JobFilter
from tests.api.helpers import ALICE, Server, make_jwt


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    return response.status_code, body["error"]["code"], body["error"]["field"]


async def nothing_created(server: Server) -> bool:
    return await server.service.count(Principal("root", "admin"), JobFilter()) == 0


async def test_no_token_is_401(server: Server) -> None:
    """A submit without a token answers 401 UNAUTHENTICATED with a WWW-Authenticate challenge."""
    async with server.http() as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}})
    assert error(response) == (401, "UNAUTHENTICATED", None)
    assert response.headers["www-authenticate"] == "Bearer"
    assert await nothing_created(server)


async def test_a_wrong_or_expired_token_is_401(server: Server) -> None:
    """An unknown token and an expired JWT both answer 401."""
    async with server.http("not-a-token") as client:
        wrong = await client.get("/api/v1/jobs")
    async with server.http(make_jwt("alice", expires_in=-10)) as client:
        expired = await client.get("/api/v1/jobs")
    assert error(wrong)[:2] == error(expired)[:2] == (401, "UNAUTHENTICATED")


async def test_a_jwt_is_accepted_as_in_graphql(server: Server) -> None:
    """A valid JWT is a token here as on ``/graphql``: its subject owns the job."""
    async with server.http(make_jwt("carol")) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}})
    assert (response.status_code, response.json()["owner"]) == (202, "carol")


async def test_wrong_content_type_is_415(server: Server) -> None:
    """A body that is not ``application/json`` answers 415, and nothing is created."""
    async with server.http(ALICE) as client:
        response = await client.post(
            "/api/v1/jobs", content=b"type=noop", headers={"Content-Type": "text/plain"}
        )
    assert error(response) == (415, "UNSUPPORTED_MEDIA_TYPE", None)
    assert await nothing_created(server)


async def test_malformed_json_is_400(server: Server) -> None:
    """A body that is not JSON answers 400 BAD_REQUEST."""
    async with server.http(ALICE) as client:
        response = await client.post(
            "/api/v1/jobs", content=b'{"type": "noop",', headers={"Content-Type": "application/json"}
        )
    assert error(response) == (400, "BAD_REQUEST", None)


async def test_a_json_array_is_400(server: Server) -> None:
    """A JSON body that is not an object answers 400 BAD_REQUEST."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json=[{"type": "noop", "payload": {}}])
    assert error(response) == (400, "BAD_REQUEST", None)


async def test_an_unknown_field_is_422_naming_it(server: Server) -> None:
    """A field ``SubmitJobInput`` does not have answers 422 VALIDATION naming it, nothing created."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}, "delay": 5})
    assert error(response) == (422, "VALIDATION", "delay")
    assert await nothing_created(server)


async def test_a_snake_case_field_is_unknown(server: Server) -> None:
    """Fields are the GraphQL names: ``delay_seconds`` is refused, ``delaySeconds`` is the field."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}, "delay_seconds": 5})
    assert error(response) == (422, "VALIDATION", "delay_seconds")


async def test_a_field_of_the_wrong_type_is_422(server: Server) -> None:
    """``priority`` sent as a string answers 422 VALIDATION on ``priority`` (no coercion)."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}, "priority": "5"})
    assert error(response) == (422, "VALIDATION", "priority")


async def test_a_missing_field_is_422(server: Server) -> None:
    """A submit without ``type`` answers 422 VALIDATION on ``type``."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"payload": {}})
    assert error(response) == (422, "VALIDATION", "type")


async def test_a_payload_the_type_refuses_is_422(server: Server) -> None:
    """A payload that fails the job type's schema answers 422 VALIDATION, as in GraphQL."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "sleep", "payload": {"seconds": -1}})
    assert error(response)[:2] == (422, "VALIDATION")


async def test_an_unknown_job_type_is_422(server: Server) -> None:
    """An unknown job type answers 422 UNKNOWN_JOB_TYPE on ``type``."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "nope", "payload": {}})
    assert error(response) == (422, "UNKNOWN_JOB_TYPE", "type")


async def test_a_payload_over_the_limit_is_413(server: Server) -> None:
    """A payload over ``JOBPULSE_MAX_PAYLOAD_BYTES`` answers 413 PAYLOAD_TOO_LARGE, nothing created."""
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {"note": "x" * 5000}})
    assert error(response)[:2] == (413, "PAYLOAD_TOO_LARGE")
    assert await nothing_created(server)


async def test_a_huge_body_is_413_before_it_is_read(server: Server) -> None:
    """A body over ``JOBPULSE_MAX_REQUEST_BYTES`` answers 413 PAYLOAD_TOO_LARGE in the REST shape."""
    async with server.http(ALICE) as client:
        response = await client.post(
            "/api/v1/jobs", content=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}
        )
    assert error(response) == (413, "PAYLOAD_TOO_LARGE", None)


async def test_an_id_that_is_not_an_id_is_404(server: Server) -> None:
    """A path id that no job can have answers 404 NOT_FOUND on ``id``, for every job route."""
    async with server.http(ALICE) as client:
        answers = [
            await client.get("/api/v1/jobs/%3Cscript%3E"),
            await client.get("/api/v1/jobs/12345"),
            await client.post("/api/v1/jobs/%27%3B%20DROP/cancel"),
            await client.post("/api/v1/jobs/%7B%24gt%3A%20%22%22%7D/retry"),
        ]
    assert [error(a) for a in answers] == [(404, "NOT_FOUND", "id")] * 4


async def test_an_unknown_job_is_404(server: Server) -> None:
    """A well-formed id of no job answers 404 NOT_FOUND."""
    async with server.http(ALICE) as client:
        response = await client.get("/api/v1/jobs/019ae3b2-0000-7000-8000-000000000000")
    assert error(response) == (404, "NOT_FOUND", "id")


async def test_list_refuses_bad_parameters(server: Server) -> None:
    """An unknown status, a non-integer or out-of-range limit, a forged cursor, an unknown parameter: 422."""
    async with server.http(ALICE) as client:
        answers = [
            await client.get("/api/v1/jobs", params={"status": "DONE"}),
            await client.get("/api/v1/jobs", params={"limit": "ten"}),
            await client.get("/api/v1/jobs", params={"limit": "501"}),
            await client.get("/api/v1/jobs", params={"cursor": "forged"}),
            await client.get("/api/v1/jobs", params={"first": "2"}),
        ]
    assert [error(a) for a in answers] == [
        (422, "VALIDATION", "status"),
        (422, "VALIDATION", "limit"),
        (422, "VALIDATION", "limit"),
        (422, "VALIDATION", "cursor"),
        (422, "VALIDATION", "first"),
    ]


async def test_an_unknown_route_is_a_json_404(server: Server) -> None:
    """A path under ``/api/v1`` that no route has answers 404 NOT_FOUND in the REST shape."""
    async with server.http(ALICE) as client:
        response = await client.get("/api/v1/queues")
    assert error(response) == (404, "NOT_FOUND", None)


async def test_a_wrong_method_is_405_with_allow(server: Server) -> None:
    """A method a route does not take answers 405 with the methods it does take in ``Allow``."""
    async with server.http(ALICE) as client:
        response = await client.delete("/api/v1/jobs")
    assert error(response) == (405, "METHOD_NOT_ALLOWED", None)
    assert response.headers["allow"] == "GET, HEAD, POST"
