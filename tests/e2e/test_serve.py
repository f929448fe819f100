"""``jobpulse serve`` as a user runs it: a real process, real HTTP and websocket clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from tests.support.graphql import JOB_FIELDS, follow_job, gql_http, subscribe
from tests.support.process import JobpulseProcess, serve_embedded

ADMIN, ALICE, BOB = "admin-secret", "alice-secret", "bob-secret"
KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user,{BOB}=bob:user"

SUBMIT = f"""
mutation($input: SubmitJobInput!) {{
  submitJob(input: $input) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message field }} }}
}}"""
CANCEL = f"mutation($id: ID!) {{ cancelJob(id: $id) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message }} }} }}"
RETRY = f"mutation($id: ID!) {{ retryJob(id: $id) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message }} }} }}"
GET = f"query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"


def serve(tmp_path: Path, **env: str) -> JobpulseProcess:
    return serve_embedded(
        tmp_path / "data", tmp_path / "serve.log", KEYS, JOBPULSE_BACKOFF_BASE_SECONDS="0.05", **env
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobpulseProcess]:
    process = serve(tmp_path_factory.mktemp("serve"))
    yield process
    process.terminate()


def submit(server: JobpulseProcess, token: str, **job_input: Any) -> dict[str, Any]:
    result: dict[str, Any] = gql_http(server.url, token, SUBMIT, {"input": job_input})["data"]["submitJob"]
    return result


async def test_job_completes_with_live_progress(server: JobpulseProcess) -> None:
    """A data_analysis job runs to COMPLETED; the subscription shows each change in version order."""
    job = submit(server, ALICE, type="data_analysis", payload={"data": [1, 2, 3, 4]})
    updates = await follow_job(server.url, ALICE, job["id"])
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["result"] == {
        "count": 4,
        "mean": 2.5,
        "median": 2.5,
        "stdev": pytest.approx(1.29099, rel=1e-4),
        "min": 1,
        "max": 4,
    }
    assert updates[-1]["progress"] == 100
    versions = [u["version"] for u in updates]
    assert versions == sorted(set(versions))


async def test_cancel_pending_job_never_runs(server: JobpulseProcess) -> None:
    """A delayed job cancelled while PENDING is CANCELLED and never starts."""
    job = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    cancelled = gql_http(server.url, ALICE, CANCEL, {"id": job["id"]})["data"]["cancelJob"]
    assert cancelled["status"] == "CANCELLED"
    final = gql_http(server.url, ALICE, GET, {"id": job["id"]})["data"]["job"]
    assert (final["status"], final["attempts"]) == ("CANCELLED", 0)


async def test_cancel_processing_job_stops_the_handler(server: JobpulseProcess) -> None:
    """Cancelling a running job stops its handler mid-sleep; it ends CANCELLED and stays so."""
    job = submit(server, ALICE, type="sleep", payload={"seconds": 120, "steps": 120})
    statuses: list[str] = []
    query = f"subscription($id: ID!) {{ jobUpdated(id: $id) {{ {JOB_FIELDS} }} }}"
    async for result in subscribe(server.url, ALICE, query, {"id": job["id"]}):
        update = result["jobUpdated"]
        statuses.append(update["status"])
        if update["status"] == "PROCESSING" and statuses.count("PROCESSING") == 1:
            answer = gql_http(server.url, ALICE, CANCEL, {"id": job["id"]})["data"]["cancelJob"]
            assert answer["__typename"] == "Job"
    assert statuses[-1] == "CANCELLED"
    final = gql_http(server.url, ALICE, GET, {"id": job["id"]})["data"]["job"]
    assert final["status"] == "CANCELLED" and final["progress"] < 100


async def test_flaky_job_succeeds_on_its_third_attempt(server: JobpulseProcess) -> None:
    """A handler that fails twice then succeeds ends COMPLETED after three attempts."""
    job = submit(server, ALICE, type="flaky", payload={"fail_times": 2})
    updates = await follow_job(server.url, ALICE, job["id"])
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["attempts"] == 3 and updates[-1]["result"] == {"attempt": 3}


async def test_timeout_fails_the_job_after_its_attempts(server: JobpulseProcess) -> None:
    """A handler that outlives timeoutSeconds is retried, then FAILED with a timeout error."""
    job = submit(server, ALICE, type="sleep", payload={"seconds": 60}, timeoutSeconds=1, maxAttempts=2)
    updates = await follow_job(server.url, ALICE, job["id"])
    assert updates[-1]["status"] == "FAILED"
    assert updates[-1]["attempts"] == 2
    assert "timed out" in updates[-1]["error"]


async def test_retry_a_failed_job(server: JobpulseProcess, tmp_path: Path) -> None:
    """retryJob brings a FAILED job back; once its cause is fixed it COMPLETES."""
    gate = tmp_path / "open"
    job = submit(server, ALICE, type="gate", payload={"path": str(gate)})
    assert (await follow_job(server.url, ALICE, job["id"]))[-1]["status"] == "FAILED"
    gate.touch()
    retried = gql_http(server.url, ALICE, RETRY, {"id": job["id"]})["data"]["retryJob"]
    assert retried["status"] == "PENDING" and retried["attempts"] == 0
    assert (await follow_job(server.url, ALICE, job["id"]))[-1]["status"] == "COMPLETED"


async def test_retry_unfinished_job_is_invalid_state(server: JobpulseProcess) -> None:
    """retryJob on a PENDING job answers INVALID_STATE."""
    job = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    answer = gql_http(server.url, ALICE, RETRY, {"id": job["id"]})["data"]["retryJob"]
    assert answer["code"] == "INVALID_STATE"


async def test_another_users_job_is_invisible(server: JobpulseProcess) -> None:
    """Bob cannot read, cancel or list Alice's job: it looks exactly like a missing one."""
    job = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    assert gql_http(server.url, BOB, GET, {"id": job["id"]})["data"]["job"] is None
    assert gql_http(server.url, BOB, CANCEL, {"id": job["id"]})["data"]["cancelJob"]["code"] == "NOT_FOUND"
    missing = gql_http(server.url, BOB, CANCEL, {"id": "00000000-0000-7000-8000-000000000000"})
    assert missing["data"]["cancelJob"]["code"] == "NOT_FOUND"
    listed = gql_http(server.url, BOB, "{ jobs(first: 100) { edges { node { id } } } }")["data"]["jobs"][
        "edges"
    ]
    assert job["id"] not in {e["node"]["id"] for e in listed}


async def test_oversized_payload_is_refused_clearly(server: JobpulseProcess) -> None:
    """A payload over 256 KiB is a PAYLOAD_TOO_LARGE UserError; nothing is created."""
    answer = submit(server, ALICE, type="noop", payload={"note": "x" * 300_000})
    assert answer["code"] == "PAYLOAD_TOO_LARGE"


async def test_hostile_queries_are_refused_and_the_server_stays_up(server: JobpulseProcess) -> None:
    """Very deep, very wide and malformed requests get errors; the server keeps answering."""
    deep = "{ jobs { edges { node { " * 30 + "id" + " } } }" * 30
    assert gql_http(server.url, ADMIN, deep).get("errors")
    aliases = "{ " + " ".join(f"a{i}: jobTypes {{ name }}" for i in range(500)) + " }"
    assert gql_http(server.url, ADMIN, aliases).get("errors")
    bad_json = httpx.post(
        f"{server.url}/graphql",
        content=b"{not json",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    huge = httpx.post(
        f"{server.url}/graphql",
        content=b"x" * (9 * 1024 * 1024),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert httpx.get(f"{server.url}/healthz").status_code == 200


async def test_missing_token_is_unauthenticated(server: JobpulseProcess) -> None:
    """No token: a GraphQL error with code UNAUTHENTICATED."""
    body = httpx.post(f"{server.url}/graphql", json={"query": "{ jobTypes { name } }"}).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_kill_9_mid_job_then_restart_finishes_it_exactly_once(tmp_path: Path) -> None:
    """kill -9 of the server mid-job loses nothing: after a restart the job completes, once."""
    process = serve(tmp_path, JOBPULSE_VISIBILITY_TIMEOUT="2")
    journal = tmp_path / "journal"
    try:
        job = submit(
            process, ALICE, type="sleep", payload={"seconds": 2, "steps": 4, "journal": str(journal)}
        )
        query = f"subscription($id: ID!) {{ jobUpdated(id: $id) {{ {JOB_FIELDS} }} }}"
        async for result in subscribe(process.url, ALICE, query, {"id": job["id"]}):
            if result["jobUpdated"]["progress"] > 0:
                break
        process.kill()
        process.start()
        updates = await follow_job(process.url, ALICE, job["id"])
        final = updates[-1]
        assert final["status"] == "COMPLETED" and final["attempts"] == 2
        lines = journal.read_text().split()
        assert lines.count("start") == 2 and lines.count("done") == 1
    finally:
        process.terminate()


async def test_jobs_survive_a_graceful_restart(tmp_path: Path) -> None:
    """Data is kept across restarts: a job submitted before SIGTERM is still there after."""
    process = serve(tmp_path)
    try:
        job = submit(process, ALICE, type="noop", payload={}, delaySeconds=3600)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped.
        assert process.terminate() in (0, -15)
        process.start()
        assert gql_http(process.url, ALICE, GET, {"id": job["id"]})["data"]["job"]["status"] == "PENDING"
    finally:
        process.terminate()


async def test_delayed_job_waits_for_its_time(server: JobpulseProcess) -> None:
    """A job with delaySeconds has runAt set and is not started before it."""
    job = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    body = gql_http(
        server.url, ALICE, "query($id: ID!) { job(id: $id) { status runAt attempts } }", {"id": job["id"]}
    )
    assert body["data"]["job"]["status"] == "PENDING" and body["data"]["job"]["runAt"] is not None


@pytest.mark.parametrize(("setting", "negotiated"), [(None, False), ("true", True)])
async def test_websocket_compression_only_when_configured(
    tmp_path: Path, setting: str | None, negotiated: bool
) -> None:
    """A client offering permessage-deflate (as browsers do) gets it only with JOBPULSE_WS_COMPRESSION."""
    env = {} if setting is None else {"JOBPULSE_WS_COMPRESSION": setting}
    process = serve(tmp_path, **env)
    try:
        url = process.url.replace("http", "ws") + "/graphql"
        async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    finally:
        process.terminate()
    assert ("permessage-deflate" in extensions) is negotiated
