"""The REST routes' answers: submit, get, list, cancel, retry, stats, over the one ``JobService``."""

from __future__ import annotations

from typing import Any

from core.models import Principal
from core.ports import JobFilter
from tests.api.helpers import ADMIN, ALICE, BOB, Server

JOB_KEYS = {
    "id", "type", "status", "payload", "result", "error", "progress", "progressMessage", "attempts",
    "maxAttempts", "priority", "owner", "idempotencyKey", "version", "createdAt", "updatedAt", "runAt",
    "startedAt", "completedAt", "payloadUrl", "resultUrl", "dependsOn", "flowId", "scheduleId",
    "concurrencyKey",
}  # fmt: skip


async def submit(server: Server, token: str, **body: Any) -> dict[str, Any]:
    async with server.http(token) as client:
        response = await client.post("/api/v1/jobs", json={"type": "noop", "payload": {}, **body})
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_submit_answers_202_with_the_job_and_its_location(server: Server) -> None:
    """A submit answers 202 with the PENDING job's fields at the top level and a Location header."""
    async with server.http(ALICE) as client:
        response = await client.post(
            "/api/v1/jobs", json={"type": "noop", "payload": {"n": 1}, "priority": 3}
        )
    assert response.status_code == 202
    job = response.json()
    assert set(job) == JOB_KEYS
    assert (job["type"], job["status"], job["payload"], job["priority"], job["owner"]) == (
        "noop", "PENDING", {"n": 1}, 3, "alice",
    )  # fmt: skip
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"


async def test_location_reads_the_job_as_graphql_does(server: Server) -> None:
    """GET on the Location answers the job with the same values GraphQL's ``job`` gives."""
    job = await submit(server, ALICE, payload={"x": [1, 2]})
    async with server.http(ALICE) as client:
        response = await client.get(f"/api/v1/jobs/{job['id']}")
    assert response.status_code == 200
    data = await server.data(
        ALICE,
        "query($id: ID!) { job(id: $id) { id type status payload owner version createdAt } }",
        id=job["id"],
    )
    assert {key: response.json()[key] for key in data["job"]} == data["job"]


async def test_submit_takes_the_version_2_fields_as_graphql_does(server: Server) -> None:
    """dependsOn, onDependencyFailure, expiresInSeconds and concurrencyKey in a REST submit make the
    same job GraphQL's submitJob would: it waits for its dependency, and shows its key."""
    first = await submit(server, ALICE)
    second = await submit(
        server,
        ALICE,
        dependsOn=[first["id"]],
        onDependencyFailure="RUN",
        expiresInSeconds=600,
        concurrencyKey="customer-7",
    )
    assert (second["status"], second["dependsOn"], second["concurrencyKey"]) == (
        "WAITING", [first["id"]], "customer-7",
    )  # fmt: skip
    data = await server.data(
        ALICE,
        "query($id: ID!) { job(id: $id) { status concurrencyKey waitReason dependsOn { id } } }",
        id=second["id"],
    )
    assert data["job"] == {
        "status": "WAITING", "concurrencyKey": "customer-7", "waitReason": "dependency",
        "dependsOn": [{"id": first["id"]}],
    }  # fmt: skip
    stored = await server.service.store.get(second["id"])
    assert stored is not None and stored.expires_in_seconds == 600
    assert stored.on_dependency_failure.value == "RUN"


async def test_a_dependency_of_another_owner_is_404(server: Server) -> None:
    """dependsOn naming a job the caller cannot see is NOT_FOUND (404), as GraphQL's, naming the field."""
    bobs = await submit(server, BOB)
    async with server.http(ALICE) as client:
        response = await client.post(
            "/api/v1/jobs", json={"type": "noop", "payload": {}, "dependsOn": [bobs["id"]]}
        )
    assert response.status_code == 404, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("NOT_FOUND", "dependsOn")


async def test_idempotency_key_header_returns_the_first_job(server: Server) -> None:
    """Two submits with the same Idempotency-Key header answer the same job; only one exists."""
    async with server.http(ALICE) as client:
        first = await client.post(
            "/api/v1/jobs", json={"type": "noop", "payload": {}}, headers={"Idempotency-Key": "k1"}
        )
        again = await client.post(
            "/api/v1/jobs", json={"type": "noop", "payload": {}}, headers={"Idempotency-Key": "k1"}
        )
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["idempotencyKey"] == "k1"
    assert await server.service.count(Principal("alice"), JobFilter()) == 1


async def test_list_pages_with_the_cursor_newest_first(server: Server) -> None:
    """``limit`` and ``nextCursor`` walk the listing newest first, every job once."""
    ids = [(await submit(server, ALICE))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    async with server.http(ALICE) as client:
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/jobs", params=params)).json()
            seen += [job["id"] for job in page["jobs"]]
            cursor = page["nextCursor"]
            if not page["hasNextPage"]:
                break
    assert seen == ids[::-1]


async def test_list_filters_by_status_and_type(server: Server) -> None:
    """``status`` (comma-separated) and ``type`` keep only the matching jobs."""
    kept = await submit(server, ALICE)
    cancelled = await submit(server, ALICE)
    await submit(server, ALICE, type="sleep", payload={"seconds": 1})
    async with server.http(ALICE) as client:
        await client.post(f"/api/v1/jobs/{cancelled['id']}/cancel")
        pending = (
            await client.get("/api/v1/jobs", params={"status": "PENDING,PROCESSING", "type": "noop"})
        ).json()
    assert [job["id"] for job in pending["jobs"]] == [kept["id"]]


async def test_list_shows_only_the_callers_jobs(server: Server) -> None:
    """A user lists its own jobs only, even when it asks for another owner's."""
    await submit(server, BOB)
    mine = await submit(server, ALICE)
    async with server.http(ALICE) as client:
        page = (await client.get("/api/v1/jobs", params={"owner": "bob"})).json()
    assert [job["id"] for job in page["jobs"]] == [mine["id"]]


async def test_another_owners_job_is_not_found(server: Server) -> None:
    """Reading, cancelling or retrying another owner's job answers 404 NOT_FOUND."""
    job = await submit(server, BOB)
    async with server.http(ALICE) as client:
        answers = [
            await client.get(f"/api/v1/jobs/{job['id']}"),
            await client.post(f"/api/v1/jobs/{job['id']}/cancel"),
            await client.post(f"/api/v1/jobs/{job['id']}/retry"),
        ]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "NOT_FOUND")] * 3


async def test_cancel_answers_the_cancelled_job(server: Server) -> None:
    """Cancelling a PENDING job answers 200 with it CANCELLED."""
    job = await submit(server, ALICE)
    async with server.http(ALICE) as client:
        response = await client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert (response.status_code, response.json()["status"]) == (200, "CANCELLED")


async def test_cancelling_a_finished_job_is_409(server: Server) -> None:
    """Cancelling a job already CANCELLED answers 409 INVALID_STATE."""
    job = await submit(server, ALICE)
    async with server.http(ALICE) as client:
        await client.post(f"/api/v1/jobs/{job['id']}/cancel")
        response = await client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "INVALID_STATE"


async def test_retry_puts_a_cancelled_job_back_to_pending(server: Server) -> None:
    """Retrying a CANCELLED job answers 200 with it PENDING again."""
    job = await submit(server, ALICE)
    async with server.http(ALICE) as client:
        await client.post(f"/api/v1/jobs/{job['id']}/cancel")
        response = await client.post(f"/api/v1/jobs/{job['id']}/retry")
    assert (response.status_code, response.json()["status"]) == (200, "PENDING")


async def test_stats_for_an_admin(server: Server) -> None:
    """An admin's stats count the jobs by status and type."""
    await submit(server, ALICE)
    async with server.http(ADMIN) as client:
        response = await client.get("/api/v1/stats")
    assert response.status_code == 200
    stats = response.json()
    assert stats["totalJobs"] == 1 and stats["byStatus"]["pending"] == 1
    assert {"type": "noop"}.items() <= next(t for t in stats["byType"] if t["type"] == "noop").items()


async def test_stats_refuse_a_user_with_403(server: Server) -> None:
    """A user's stats request answers 403 FORBIDDEN."""
    async with server.http(ALICE) as client:
        response = await client.get("/api/v1/stats")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "FORBIDDEN")


async def test_health_is_an_alias_of_healthz(server: Server) -> None:
    """``GET /health`` answers as ``/healthz`` does, without a token."""
    async with server.http() as client:
        health, healthz = await client.get("/health"), await client.get("/healthz")
    assert (
        (health.status_code, health.json())
        == (healthz.status_code, healthz.json())
        == (200, {"status": "ok"})
    )
