"""submitJob, submitJobs, cancelJob, retryJob and redriveDeadLetters over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from core.models import JobStatus, Principal
from core.ports import CONTROL, CancelRequested
from tests.api.helpers import ADMIN, ALICE, BOB, JOB_FIELDS, Server

SUBMIT = f"""
mutation($input: SubmitJobInput!) {{
  submitJob(input: $input) {{
    __typename
    ... on Job {{ {JOB_FIELDS} priority idempotencyKey runAt createdAt }}
    ... on UserError {{ code message field }}
  }}
}}"""

SUBMIT_MANY = """
mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) {
    __typename
    ... on Job { id type }
    ... on UserError { code message field }
  }
}"""

CANCEL = f"""
mutation($id: ID!) {{
  cancelJob(id: $id) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message field }} }}
}}"""

RETRY = f"""
mutation($id: ID!) {{
  retryJob(id: $id) {{ __typename ... on Job {{ {JOB_FIELDS} }} ... on UserError {{ code message field }} }}
}}"""


async def submit(server: Server, token: str, **input: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await server.data(token, SUBMIT, input=input))["submitJob"]
    return result


async def test_submit_job_creates_a_pending_job_owned_by_the_caller(server: Server) -> None:
    """submitJob returns the new job, PENDING, owned by the caller, with the job type's defaults."""
    job = await submit(server, ALICE, type="flaky", payload={"fail_times": 1}, priority=5)

    assert job["__typename"] == "Job"
    assert job["status"] == "PENDING"
    assert job["owner"] == "alice"
    assert job["payload"] == {"fail_times": 1}
    assert job["priority"] == 5
    assert job["maxAttempts"] == 5
    assert job["version"] == 1
    assert job["createdAt"].endswith("+00:00")


async def test_delay_seconds_sets_run_at(server: Server) -> None:
    """A delayed job is PENDING with runAt in the future."""
    job = await submit(server, ALICE, type="noop", payload={}, delaySeconds=600)

    assert job["runAt"] is not None and job["runAt"] > job["createdAt"]


async def test_invalid_payload_is_a_validation_error_naming_the_field(server: Server) -> None:
    """A payload its job type refuses gives UserError VALIDATION with the offending field."""
    error = await submit(server, ALICE, type="sleep", payload={"seconds": -1})

    assert error == {
        "__typename": "UserError",
        "code": "VALIDATION",
        "message": error["message"],
        "field": "payload.seconds",
    }


async def test_non_object_payload_is_a_validation_error(server: Server) -> None:
    """A payload that is not a JSON object gives UserError VALIDATION on payload."""
    error = await submit(server, ALICE, type="noop", payload=[1, 2])  # type: ignore[arg-type]

    assert (error["code"], error["field"]) == ("VALIDATION", "payload")


async def test_out_of_range_option_is_a_validation_error(server: Server) -> None:
    """An option outside its range (maxAttempts 0) gives UserError VALIDATION naming it."""
    error = await submit(server, ALICE, type="noop", payload={}, maxAttempts=0)

    assert (error["code"], error["field"]) == ("VALIDATION", "maxAttempts")


async def test_unknown_job_type_is_refused(server: Server) -> None:
    """An unregistered type gives UserError UNKNOWN_JOB_TYPE on the type field."""
    error = await submit(server, ALICE, type="nope", payload={})

    assert (error["code"], error["field"]) == ("UNKNOWN_JOB_TYPE", "type")


async def test_payload_over_the_limit_is_refused(server: Server) -> None:
    """A payload over JOBPULSE_MAX_PAYLOAD_BYTES gives UserError PAYLOAD_TOO_LARGE."""
    error = await submit(server, ALICE, type="noop", payload={"note": "x" * 5000})

    assert error["code"] == "PAYLOAD_TOO_LARGE"


async def test_unstorable_json_literal_is_refused_as_bad_input(server: Server) -> None:
    """A payload literal the store cannot encode (an integer over 64 bits) is a GraphQL error, not a 500."""
    query = (
        'mutation { submitJob(input: {type: "noop", payload: {n: 1180591620717411303424}}) { __typename } }'
    )

    body = await server.graphql(ALICE, query)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_submit_jobs_answers_each_input_in_order(server: Server) -> None:
    """submitJobs creates the valid inputs and refuses the others, one result per input, same order."""
    inputs = [
        {"type": "noop", "payload": {"note": "first"}},
        {"type": "nope", "payload": {}},
        {"type": "sleep", "payload": {"seconds": 0.1}},
        {"type": "sleep", "payload": {}},
    ]

    results = (await server.data(ALICE, SUBMIT_MANY, inputs=inputs))["submitJobs"]

    assert [r["__typename"] for r in results] == ["Job", "UserError", "Job", "UserError"]
    assert [r.get("type") or r["code"] for r in results] == [
        "noop",
        "UNKNOWN_JOB_TYPE",
        "sleep",
        "VALIDATION",
    ]
    assert (await server.stored(results[0]["id"])).payload == {"note": "first"}


async def test_idempotency_key_returns_the_first_job(server: Server) -> None:
    """A second submission with the same owner and idempotencyKey returns the first job, no new one."""
    first = await submit(server, ALICE, type="noop", payload={"note": "a"}, idempotencyKey="k-1")
    again = await submit(server, ALICE, type="noop", payload={"note": "b"}, idempotencyKey="k-1")
    other_owner = await submit(server, BOB, type="noop", payload={}, idempotencyKey="k-1")

    assert again["id"] == first["id"]
    assert again["payload"] == {"note": "a"}
    assert other_owner["id"] != first["id"]
    total = await server.data(ADMIN, "{ jobs { totalCount } }")
    assert total["jobs"]["totalCount"] == 2


async def test_cancel_pending_job_cancels_it(server: Server) -> None:
    """cancelJob on a PENDING job makes it CANCELLED."""
    job_id = await server.submit(ALICE)

    job = (await server.data(ALICE, CANCEL, id=job_id))["cancelJob"]

    assert (job["__typename"], job["status"]) == ("Job", "CANCELLED")


async def test_cancel_processing_job_requests_cancellation_and_signals_the_worker(server: Server) -> None:
    """cancelJob on a PROCESSING job sets the cancel flag and publishes a control message."""
    job_id = await server.submit(ALICE, "sleep", {"seconds": 10})
    await server.start(job_id)

    async with server.service.bus.subscribe([CONTROL]) as control:
        job = (await server.data(ALICE, CANCEL, id=job_id))["cancelJob"]
        message = await asyncio.wait_for(anext(aiter(control)), 10)

    assert job["status"] == "PROCESSING"
    assert message == CancelRequested(job_id)
    assert (await server.stored(job_id)).cancel_requested


async def test_cancel_finished_job_is_invalid_state(server: Server) -> None:
    """cancelJob on a COMPLETED job gives UserError INVALID_STATE."""
    job_id = await server.submit(ALICE)
    await server.service.complete(await server.start(job_id), {"ok": True})

    error = (await server.data(ALICE, CANCEL, id=job_id))["cancelJob"]

    assert error["code"] == "INVALID_STATE"


async def test_retry_failed_job_puts_it_back_to_pending(server: Server) -> None:
    """retryJob on a FAILED job makes it PENDING with attempts reset."""
    job_id = await server.submit(ALICE, "fail", {})
    await server.service.fail_attempt(await server.start(job_id), "boom", retryable=False)

    job = (await server.data(ALICE, RETRY, id=job_id))["retryJob"]

    assert (job["status"], job["attempts"]) == ("PENDING", 0)
    assert (await server.stored(job_id)).status is JobStatus.PENDING


async def test_retry_unfinished_job_is_invalid_state(server: Server) -> None:
    """retryJob on a PENDING job gives UserError INVALID_STATE."""
    job_id = await server.submit(ALICE)

    error = (await server.data(ALICE, RETRY, id=job_id))["retryJob"]

    assert error["code"] == "INVALID_STATE"


async def test_missing_job_is_not_found(server: Server) -> None:
    """cancelJob and retryJob on an id that does not exist give UserError NOT_FOUND on id."""
    for mutation, name in ((CANCEL, "cancelJob"), (RETRY, "retryJob")):
        error = (await server.data(ALICE, mutation, id="no-such-job"))[name]
        assert (error["code"], error["field"]) == ("NOT_FOUND", "id")


async def test_another_users_job_is_reported_as_not_found(server: Server) -> None:
    """Bob cancelling Alice's job gets NOT_FOUND, exactly as for a missing job, and the job is untouched."""
    job_id = await server.submit(ALICE)

    error = (await server.data(BOB, CANCEL, id=job_id))["cancelJob"]
    missing = (await server.data(BOB, CANCEL, id="no-such-job"))["cancelJob"]

    assert error["code"] == missing["code"] == "NOT_FOUND"
    assert error["message"] == missing["message"].replace("no-such-job", job_id)
    assert (await server.stored(job_id)).status is JobStatus.PENDING


async def test_admin_may_cancel_anyones_job(server: Server) -> None:
    """An admin cancels a user's job."""
    job_id = await server.submit(ALICE)

    job = (await server.data(ADMIN, CANCEL, id=job_id))["cancelJob"]

    assert job["status"] == "CANCELLED"


async def test_redrive_dead_letters_is_for_admins(server: Server) -> None:
    """redriveDeadLetters answers a count for an admin and FORBIDDEN for a user."""
    query = 'mutation { redriveDeadLetters(type: "fail") }'

    assert (await server.data(ADMIN, query)) == {"redriveDeadLetters": 0}
    body = await server.graphql(ALICE, query)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_redrive_unknown_type_is_an_error(server: Server) -> None:
    """redriveDeadLetters of an unknown type is an error coded UNKNOWN_JOB_TYPE."""
    body = await server.graphql(ADMIN, 'mutation { redriveDeadLetters(type: "nope") }')

    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_JOB_TYPE"


async def test_service_principal_sees_the_job_the_api_created(server: Server) -> None:
    """A job submitted over the API is the service's, owned by the token's subject."""
    job_id = await server.submit(BOB)

    assert await server.service.get(Principal("bob"), job_id) is not None
    assert await server.service.get(Principal("alice"), job_id) is None
