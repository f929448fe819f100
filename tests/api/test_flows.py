"""Workflows over GraphQL, on a real server with the embedded and the distributed backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.api.helpers import ALICE, API_KEYS, BOB, JWT_SECRET, Server, api_settings, run_server
from tests.support.services import BACKENDS

SUBMIT_FLOW = """
mutation($input: SubmitFlowInput!) {
  submitFlow(input: $input) {
    ... on Flow { id name status jobs { key after job { id status } } }
    ... on UserError { code message field }
  }
}
"""
FLOW_UPDATED = "subscription($id: ID!) { flowUpdated(id: $id) { status jobs { key job { status } } } }"
JOB_LINKS = """
query($id: ID!) {
  job(id: $id) { status flow { id } dependsOn { id } dependents { id } dependencyResults }
}
"""


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server on either kind of backends, with the usual keys."""
    options: dict[str, Any] = {"api_keys": API_KEYS, "jwt_secret": JWT_SECRET, "shutdown_grace_seconds": 1}
    if request.param == "embedded":
        settings = api_settings(tmp_path / "data")
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        settings = make(**options)
    async with run_server(settings) as running:
        yield running


def job(key: str, *after: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "job": {"type": "noop", "payload": {}, **extra}, "after": list(after)}


async def submit_flow(server: Server, *jobs: dict[str, Any], token: str = ALICE) -> dict[str, Any]:
    data = await server.data(token, SUBMIT_FLOW, input={"name": "pipeline", "jobs": list(jobs)})
    flow: dict[str, Any] = data["submitFlow"]
    return flow


def ids(flow: dict[str, Any]) -> dict[str, str]:
    return {j["key"]: j["job"]["id"] for j in flow["jobs"]}


async def complete(server: Server, job_id: str) -> None:
    claim = await server.start(job_id)
    await server.service.complete(claim, {"done": job_id})


async def test_submit_flow_answers_the_flow_with_its_jobs(server: Server) -> None:
    """``submitFlow`` answers the RUNNING flow, its roots PENDING and the rest WAITING."""
    flow = await submit_flow(server, job("a"), job("b", "a"))
    assert (flow["name"], flow["status"]) == ("pipeline", "RUNNING")
    assert [(j["key"], j["after"], j["job"]["status"]) for j in flow["jobs"]] == [
        ("a", [], "PENDING"),
        ("b", ["a"], "WAITING"),
    ]


async def test_a_cycle_is_a_user_error_naming_a_key(server: Server) -> None:
    """A cycle is a VALIDATION ``UserError`` whose field is a key of the cycle."""
    flow = await submit_flow(server, job("a", "b"), job("b", "a"))
    assert flow["code"] == "VALIDATION" and flow["field"] in {"a", "b"}


async def test_a_job_links_to_its_flow_dependencies_and_dependents(server: Server) -> None:
    """``Job.flow``, ``dependsOn``, ``dependents`` and ``dependencyResults`` link a flow's jobs."""
    flow = await submit_flow(server, job("a"), job("b", "a"))
    keys = ids(flow)
    await complete(server, keys["a"])
    a = (await server.data(ALICE, JOB_LINKS, id=keys["a"]))["job"]
    b = (await server.data(ALICE, JOB_LINKS, id=keys["b"]))["job"]
    assert (a["flow"]["id"], a["dependents"], a["dependsOn"]) == (flow["id"], [{"id": keys["b"]}], [])
    assert (b["status"], b["dependsOn"], b["dependencyResults"]) == (
        "PENDING",
        [{"id": keys["a"]}],
        {keys["a"]: {"done": keys["a"]}},
    )


async def test_submit_job_with_an_unknown_dependency_is_not_found(server: Server) -> None:
    """``submitJob`` with a ``dependsOn`` naming no job is NOT_FOUND on ``dependsOn``."""
    data = await server.data(
        ALICE,
        "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on UserError { code field } } }",
        input={"type": "noop", "payload": {}, "dependsOn": ["00000000-0000-7000-8000-000000000000"]},
    )
    assert data["submitJob"] == {"code": "NOT_FOUND", "field": "dependsOn"}


async def test_another_user_cannot_read_a_flow(server: Server) -> None:
    """A flow is owner-scoped: ``flow`` answers null to another user."""
    flow = await submit_flow(server, job("a"))
    data = await server.data(BOB, "query($id: ID!) { flow(id: $id) { id } }", id=flow["id"])
    assert data["flow"] is None


async def test_jobs_filter_by_flow_id_lists_that_flows_jobs_only_to_its_owner(server: Server) -> None:
    """``jobs(filter: {flowId})`` lists and counts the flow's jobs, newest first; another user sees none."""
    flow = await submit_flow(server, job("a"), job("b", "a"), job("c", "a"))
    await submit_flow(server, job("other"))
    await server.submit(ALICE)
    query = "query($id: ID!) { jobs(filter: {flowId: $id}) { totalCount edges { node { id flow { id } } } } }"
    mine = (await server.data(ALICE, query, id=flow["id"]))["jobs"]
    assert mine["totalCount"] == 3
    assert {e["node"]["id"] for e in mine["edges"]} == set(ids(flow).values())
    assert {e["node"]["flow"]["id"] for e in mine["edges"]} == {flow["id"]}
    theirs = (await server.data(BOB, query, id=flow["id"]))["jobs"]
    assert theirs == {"totalCount": 0, "edges": []}


async def test_cancel_flow_cancels_its_unfinished_jobs(server: Server) -> None:
    """``cancelFlow`` answers the CANCELLED flow, every job CANCELLED."""
    flow = await submit_flow(server, job("a"), job("b", "a"))
    data = await server.data(
        ALICE,
        "mutation($id: ID!) { cancelFlow(id: $id) { ... on Flow { status jobs { job { status } } } } }",
        id=flow["id"],
    )
    cancelled = data["cancelFlow"]
    assert cancelled["status"] == "CANCELLED"
    assert {j["job"]["status"] for j in cancelled["jobs"]} == {"CANCELLED"}


async def test_flow_updated_follows_the_flow_until_it_completes(server: Server) -> None:
    """``flowUpdated`` emits the flow, then again as its jobs change, and completes at COMPLETED."""
    flow = await submit_flow(server, job("a"), job("b", "a"))
    keys = ids(flow)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(FLOW_UPDATED, id=flow["id"])
        first = await updates.next()
        await complete(server, keys["a"])
        await complete(server, keys["b"])
        seen = [first]
        while seen[-1]["flowUpdated"]["status"] == "RUNNING":
            seen.append(await updates.next())
        assert await updates.ended()
    assert seen[0]["flowUpdated"]["status"] == "RUNNING"
    assert seen[-1]["flowUpdated"]["status"] == "COMPLETED"


async def test_flows_lists_the_owners_flows(server: Server) -> None:
    """``flows`` lists the caller's flows, newest first, with a total count."""
    first = await submit_flow(server, job("a"))
    second = await submit_flow(server, job("a"))
    data = await server.data(ALICE, "{ flows(first: 10) { totalCount edges { node { id } } } }")
    assert data["flows"]["totalCount"] == 2
    assert [e["node"]["id"] for e in data["flows"]["edges"]] == [second["id"], first["id"]]


async def test_submit_job_with_depends_on_and_run_policy_waits_then_runs(server: Server) -> None:
    """``submitJob`` with ``dependsOn`` and ``onDependencyFailure: RUN`` is WAITING, then PENDING
    once its dependency failed."""
    first = await server.submit(ALICE)
    data = await server.data(
        ALICE,
        "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on Job { id status } } }",
        input={"type": "noop", "payload": {}, "dependsOn": [first], "onDependencyFailure": "RUN"},
    )
    dependent = data["submitJob"]
    assert dependent["status"] == "WAITING"
    claim = await server.start(first)
    await server.service.fail_attempt(claim, "boom", retryable=False)
    assert (await server.stored(dependent["id"])).status.value == "PENDING"
