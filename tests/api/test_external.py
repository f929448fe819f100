"""External processors over GraphQL: claimJob, then reports under the job token, checked against the claim."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.job_tokens import JobToken, JobTokenCodec
from core.models import Claim, JobStatus, utcnow
from tests.api.helpers import ADMIN, ALICE, BOB, Server, api_settings, run_server
from tests.api.streaming import subscribed
from workers.registry import external_job_types

CLAIM = """
mutation($id: ID!, $lease: Int) {
  claimJob(id: $id, leaseSeconds: $lease) {
    __typename
    ... on JobClaim { token leaseUntil expiresAt job { id status attempts } }
    ... on UserError { code message field }
  }
}"""
OUTCOME = "__typename ... on Job { id status progress progressMessage result error version } ... on UserError { code message }"
PROGRESS = f"""
mutation($token: String!, $percent: Float!, $message: String) {{
  reportProgress(token: $token, percent: $percent, message: $message) {{ {OUTCOME} }}
}}"""
LOG = f"""
mutation($token: String!, $message: String!) {{
  appendLog(token: $token, message: $message, level: WARNING) {{ {OUTCOME} }}
}}"""
COMPLETE = f"""
mutation($token: String!, $result: JSON) {{ completeJob(token: $token, result: $result) {{ {OUTCOME} }} }}"""
FAIL = f"""
mutation($token: String!, $error: String!, $retryable: Boolean!) {{
  failJob(token: $token, error: $error, retryable: $retryable) {{ {OUTCOME} }}
}}"""
HEARTBEAT = """
mutation($token: String!) {
  heartbeatJob(token: $token) {
    __typename
    ... on JobLease { leaseUntil cancelRequested job { status } }
    ... on UserError { code message }
  }
}"""
EVENTS = "subscription($jobId: ID) { jobEvents(jobId: $jobId) { kind message job { status progress } } }"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """An API server that also knows the external type ``render``; retries are due at once."""
    async with run_server(api_settings(tmp_path / "data", backoff_base_seconds=0)) as running:
        for job_type in external_job_types("render:Renders a scene elsewhere"):
            running.service.registry.register(job_type)
        yield running


async def claim(server: Server, token: str, job_id: str, **variables: Any) -> dict[str, Any]:
    data = await server.data(token, CLAIM, id=job_id, **variables)
    result: dict[str, Any] = data["claimJob"]
    return result


async def report(server: Server, caller: str, operation: str, **variables: Any) -> dict[str, Any]:
    """Run one report mutation as ``caller``; return its result (``token`` is the job token)."""
    async with server.http(caller) as client:
        response = await client.post("/graphql", json={"query": operation, "variables": variables})
    body = response.json()
    assert "errors" not in body, body["errors"]
    (result,) = body["data"].values()
    assert isinstance(result, dict)
    return result


async def claimed(server: Server, caller: str = ALICE) -> tuple[str, str]:
    """A render job of alice's, claimed by ``caller``: (job id, job token)."""
    job_id = await server.submit(ALICE, "render", {"scene": "teapot"})
    got = await claim(server, caller, job_id)
    assert got["__typename"] == "JobClaim", got
    return job_id, got["token"]


async def test_claim_progress_log_complete_are_seen_live_in_order(server: Server) -> None:
    """An external processor's claim, progress, log line and completion reach a subscriber in order."""
    job_id = await server.submit(ALICE, "render", {"scene": "teapot"})
    async with server.ws(ALICE) as session:
        feed = session.subscribe(EVENTS, jobId=job_id)
        await subscribed(server, 1)

        got = await claim(server, ALICE, job_id)
        token = got["token"]
        progressed = await report(server, ALICE, PROGRESS, token=token, percent=40, message="lighting")
        logged = await report(server, ALICE, LOG, token=token, message="GPU 0 warm")
        completed = await report(server, ALICE, COMPLETE, token=token, result={"frames": 24})

        seen = [(await feed.next())["jobEvents"] for _ in range(4)]

    assert got["job"] == {"id": job_id, "status": "PROCESSING", "attempts": 1}
    assert (progressed["progress"], progressed["progressMessage"]) == (40, "lighting")
    assert logged["status"] == "PROCESSING"
    assert (completed["status"], completed["result"]) == ("COMPLETED", {"frames": 24})
    assert [(e["kind"], e["job"]["status"], e["job"]["progress"]) for e in seen] == [
        ("STARTED", "PROCESSING", 0),
        ("PROGRESS", "PROCESSING", 40),
        ("LOG", "PROCESSING", 40),
        ("COMPLETED", "COMPLETED", 100),
    ]
    assert [seen[1]["message"], seen[2]["message"]] == ["lighting", "GPU 0 warm"]


async def test_second_claimer_is_refused(server: Server) -> None:
    """While one processor holds the claim, another claimJob is refused and changes nothing."""
    job_id, _ = await claimed(server)
    before = await server.stored(job_id)

    second = await claim(server, ADMIN, job_id)

    assert (second["code"], second["field"]) == ("INVALID_STATE", "id")
    assert "claimed by another processor" in second["message"]
    assert await server.stored(job_id) == before


async def test_report_after_cancel_is_refused(server: Server) -> None:
    """After cancelJob, a late report is refused with CLAIM_LOST and the job ends CANCELLED."""
    job_id, token = await claimed(server)
    await server.data(ALICE, "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", id=job_id)

    late = await report(server, ALICE, COMPLETE, token=token, result={"frames": 24})
    later = await report(server, ALICE, PROGRESS, token=token, percent=90)

    assert late["code"] == "CLAIM_LOST" and "cancelled" in late["message"]
    assert later["code"] == "CLAIM_LOST"
    job = await server.stored(job_id)
    assert (job.status, job.result) == (JobStatus.CANCELLED, None)


async def test_heartbeat_extends_the_lease(server: Server) -> None:
    """heartbeatJob moves the lease's end later and says no cancel was requested."""
    job_id = await server.submit(ALICE, "render", {})
    got = await claim(server, ALICE, job_id, lease=30)

    beat = await report(server, ALICE, HEARTBEAT, token=got["token"])

    assert beat["cancelRequested"] is False
    assert beat["leaseUntil"] > got["leaseUntil"]
    assert (await server.stored(job_id)).lease_until.isoformat() == beat["leaseUntil"]  # type: ignore[union-attr]


async def test_heartbeat_tells_the_processor_of_a_cancel(server: Server) -> None:
    """heartbeatJob after cancelJob answers cancelRequested and ends the job CANCELLED."""
    job_id, token = await claimed(server)
    await server.data(ALICE, "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", id=job_id)

    beat = await report(server, ALICE, HEARTBEAT, token=token)

    assert beat == {
        "__typename": "JobLease",
        "leaseUntil": None,
        "cancelRequested": True,
        "job": {"status": "CANCELLED"},
    }


async def test_forged_token_is_refused(server: Server) -> None:
    """A token whose content was altered (here: the attempt) is INVALID_TOKEN and changes nothing."""
    job_id, token = await claimed(server)
    prefix, payload, signature = token.split(".")
    body = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["a"] = 2
    forged = ".".join([prefix, base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode(), signature])
    before = await server.stored(job_id)

    refused = await report(server, ALICE, COMPLETE, token=forged, result={})

    assert refused["code"] == "INVALID_TOKEN"
    assert await server.stored(job_id) == before


async def test_token_signed_with_another_secret_is_refused(server: Server) -> None:
    """A well-formed token for the real claim, signed with another secret, is INVALID_TOKEN."""
    job_id, _ = await claimed(server)
    job = await server.stored(job_id)
    assert job.lease_owner is not None
    other = JobTokenCodec(b"not-the-server-secret-at-all")
    forged = other.encode(JobToken(Claim(job_id, job.lease_owner, 1), 60, utcnow() + timedelta(hours=1)))

    refused = await report(server, ALICE, PROGRESS, token=forged, percent=50)

    assert refused["code"] == "INVALID_TOKEN"
    assert (await server.stored(job_id)).progress == 0


async def test_expired_token_is_refused(server: Server) -> None:
    """A genuine token for the live claim, past its expiry, is INVALID_TOKEN."""
    job_id, _ = await claimed(server)
    job = await server.stored(job_id)
    assert job.lease_owner is not None
    codec = JobTokenCodec.from_settings(server.service.settings)
    expired = codec.encode(JobToken(Claim(job_id, job.lease_owner, 1), 60, utcnow() - timedelta(seconds=1)))

    refused = await report(server, ALICE, PROGRESS, token=expired, percent=50)

    assert refused["code"] == "INVALID_TOKEN" and "expired" in refused["message"]
    assert (await server.stored(job_id)).progress == 0


async def test_token_of_an_earlier_attempt_is_refused(server: Server) -> None:
    """After a retryable failJob and a new claim, the first attempt's token gets CLAIM_LOST."""
    job_id, first = await claimed(server)
    failed = await report(server, ALICE, FAIL, token=first, error="GPU fell over", retryable=True)
    second = await claim(server, ALICE, job_id)

    stale = await report(server, ALICE, COMPLETE, token=first, result={})

    assert failed["status"] == "PENDING"
    assert second["job"]["attempts"] == 2
    assert stale["code"] == "CLAIM_LOST" and "attempt 2" in stale["message"]
    assert (await server.stored(job_id)).status is JobStatus.PROCESSING


async def test_non_retryable_failure_fails_the_job(server: Server) -> None:
    """failJob with retryable false ends the job FAILED with the processor's error."""
    _, token = await claimed(server)

    failed = await report(server, ALICE, FAIL, token=token, error="scene is corrupt", retryable=False)

    assert (failed["status"], failed["error"]) == ("FAILED", "scene is corrupt")


async def test_user_cannot_claim_another_users_job(server: Server) -> None:
    """Bob claiming alice's job gets NOT_FOUND, exactly as for a job that does not exist."""
    job_id = await server.submit(ALICE, "render", {})

    refused = await claim(server, BOB, job_id)

    assert refused["code"] == "NOT_FOUND"
    assert (await server.stored(job_id)).status is JobStatus.PENDING


async def test_user_cannot_report_with_another_users_token(server: Server) -> None:
    """A token of alice's claim is no use to bob: NOT_FOUND, nothing written."""
    job_id, token = await claimed(server)

    refused = await report(server, BOB, PROGRESS, token=token, percent=50)

    assert refused["code"] == "NOT_FOUND"
    assert (await server.stored(job_id)).progress == 0


async def test_jobs_of_worker_types_cannot_be_claimed(server: Server) -> None:
    """claimJob on a job that jobpulse workers run is refused (VALIDATION) and leaves it PENDING."""
    job_id = await server.submit(ALICE, "noop")

    refused = await claim(server, ALICE, job_id)

    assert (refused["code"], refused["field"]) == ("VALIDATION", "id")
    assert (await server.stored(job_id)).status is JobStatus.PENDING
