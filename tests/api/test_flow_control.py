"""The flow control mutations and JobType's limits over HTTP, on both backends (API.md "Flow control")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.api.helpers import ADMIN, ALICE, API_KEYS, JWT_SECRET, Server, api_settings, run_server
from tests.support.services import BACKENDS

TYPE = "__typename ... on JobType { name paused concurrency concurrencyPerKey rateLimit { limit periodSeconds } }"
ERROR = "... on UserError { code field message }"
SET = f"""mutation($type: String!, $limits: JobTypeLimitsInput!) {{
    setJobTypeLimits(type: $type, limits: $limits) {{ {TYPE} {ERROR} }} }}"""
PAUSE = f"mutation($type: String!) {{ pauseJobType(type: $type) {{ {TYPE} {ERROR} }} }}"
RESUME = f"mutation($type: String!) {{ resumeJobType(type: $type) {{ {TYPE} {ERROR} }} }}"
TYPES = "{ jobTypes { name paused concurrency concurrencyPerKey rateLimit { limit periodSeconds } } }"


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server on each kind of backends."""
    if request.param == "embedded":
        settings = api_settings(tmp_path / "data")
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        settings = make(api_keys=API_KEYS, jwt_secret=JWT_SECRET, shutdown_grace_seconds=1)
    async with run_server(settings) as running:
        yield running


async def set_limits(server: Server, type: str, **limits: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await server.data(ADMIN, SET, type=type, limits=limits))["setJobTypeLimits"]
    return result


async def listed(server: Server, name: str) -> dict[str, Any]:
    types = (await server.data(ADMIN, TYPES))["jobTypes"]
    found: dict[str, Any] = next(t for t in types if t["name"] == name)
    return found


async def test_limits_are_set_left_unchanged_when_left_out_and_removed_when_null(server: Server) -> None:
    """setJobTypeLimits changes the fields sent, keeps those left out, and removes those sent as null."""
    assert await listed(server, "noop") == {
        "name": "noop",
        "paused": False,
        "concurrency": None,
        "concurrencyPerKey": 1,
        "rateLimit": None,
    }
    first = await set_limits(server, "noop", concurrency=4, rateLimit=10, ratePeriodSeconds=2.5)
    assert first["concurrency"] == 4 and first["rateLimit"] == {"limit": 10, "periodSeconds": 2.5}
    second = await set_limits(server, "noop", concurrencyPerKey=3)
    assert (second["concurrency"], second["concurrencyPerKey"]) == (4, 3)
    assert second["rateLimit"] == {"limit": 10, "periodSeconds": 2.5}
    third = await set_limits(server, "noop", concurrency=None, rateLimit=None)
    assert (third["concurrency"], third["rateLimit"], third["concurrencyPerKey"]) == (None, None, 3)
    assert (await listed(server, "noop"))["concurrencyPerKey"] == 3


async def test_pause_and_resume_show_on_the_job_type_and_submits_are_still_accepted(server: Server) -> None:
    """A paused type says so, still accepts submits (PENDING), and resumes."""
    paused = (await server.data(ADMIN, PAUSE, type="noop"))["pauseJobType"]
    assert paused["__typename"] == "JobType" and paused["paused"] is True
    assert (await listed(server, "noop"))["paused"] is True
    job_id = await server.submit(ALICE, "noop", {"note": "waits"})
    assert (await server.stored(job_id)).status.value == "PENDING"
    resumed = (await server.data(ADMIN, RESUME, type="noop"))["resumeJobType"]
    assert resumed["paused"] is False


async def test_a_submitted_concurrency_key_is_kept_on_the_job(server: Server) -> None:
    """submitJob's concurrencyKey is stored and shown as Job.concurrencyKey."""
    data = await server.data(
        ALICE,
        "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on Job { id concurrencyKey } } }",
        input={"type": "noop", "payload": {}, "concurrencyKey": "customer-7"},
    )
    assert data["submitJob"]["concurrencyKey"] == "customer-7"
    assert (await server.stored(data["submitJob"]["id"])).concurrency_key == "customer-7"


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"concurrency": -1}, "concurrency"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrencyPerKey": 0}, "concurrencyPerKey"),
        ({"rateLimit": -5}, "rateLimit"),
        ({"rateLimit": 5, "ratePeriodSeconds": 0}, "ratePeriodSeconds"),
        ({"ratePeriodSeconds": 2}, "rateLimit"),
    ],
)
async def test_bad_limits_are_a_validation_error_on_the_field(
    server: Server, limits: dict[str, Any], field: str
) -> None:
    """A negative or zero limit (or a period without a rate) is a VALIDATION UserError naming the field."""
    error = await set_limits(server, "noop", **limits)
    assert (error["__typename"], error["code"], error["field"]) == ("UserError", "VALIDATION", field)


async def test_limits_of_an_unknown_type_are_not_found_on_type(server: Server) -> None:
    """Every flow control mutation answers an unknown type with NOT_FOUND on the type field."""
    for query, extra in ((PAUSE, {}), (RESUME, {}), (SET, {"limits": {"concurrency": 1}})):
        data = await server.data(ADMIN, query, type="no_such_type", **extra)
        (result,) = data.values()
        assert (result["code"], result["field"]) == ("NOT_FOUND", "type")


async def test_a_user_calling_the_flow_control_mutations_is_forbidden(server: Server) -> None:
    """A user (not an admin) gets a GraphQL error with extensions.code FORBIDDEN, and nothing changes."""
    for query, extra in ((PAUSE, {}), (RESUME, {}), (SET, {"limits": {"concurrency": 1}})):
        body = await server.graphql(ALICE, query, type="noop", **extra)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await listed(server, "noop"))["paused"] is False
    assert (await listed(server, "noop"))["concurrency"] is None


WAIT = "query($id: ID!) { job(id: $id) { status waitReason } }"


async def wait_reason(server: Server, job_id: str) -> str | None:
    reason: str | None = (await server.data(ADMIN, WAIT, id=job_id))["job"]["waitReason"]
    return reason


async def submit_input(server: Server, **job_input: Any) -> str:
    query = "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on Job { id } } }"
    job_id: str = (await server.data(ADMIN, query, input=job_input))["submitJob"]["id"]
    return job_id


async def test_a_waiting_job_says_why_it_waits(server: Server) -> None:
    """Job.waitReason: runAt, dependency, paused, concurrency, key; null once nothing holds it back.
    (rate: the next test.)"""
    later = await submit_input(server, type="noop", payload={}, delaySeconds=3600)
    assert await wait_reason(server, later) == "runAt"
    dependent = await submit_input(server, type="noop", payload={}, dependsOn=[later])
    assert await wait_reason(server, dependent) == "dependency"

    await set_limits(server, "sleep", concurrency=1)
    running = await submit_input(server, type="sleep", payload={"seconds": 1}, concurrencyKey="k")
    await server.start(running)
    assert await wait_reason(server, running) is None  # it runs
    held = await submit_input(server, type="sleep", payload={"seconds": 1})
    assert await wait_reason(server, held) == "concurrency"
    await set_limits(server, "sleep", concurrency=None)
    same_key = await submit_input(server, type="sleep", payload={"seconds": 1}, concurrencyKey="k")
    assert await wait_reason(server, same_key) == "key"
    assert await wait_reason(server, held) is None  # no limit left: it waits for a worker only

    await server.data(ADMIN, PAUSE, type="sleep")
    assert await wait_reason(server, held) == "paused"


async def test_a_job_held_by_a_spent_rate_says_rate(server: Server) -> None:
    """With the type's one start a minute taken, the next PENDING job's waitReason is rate."""
    await set_limits(server, "noop", rateLimit=1, ratePeriodSeconds=60)
    first = await submit_input(server, type="noop", payload={})
    assert await wait_reason(server, first) is None  # the window has room
    await server.start(first)
    second = await submit_input(server, type="noop", payload={})
    assert await wait_reason(server, second) == "rate"
