"""The submit mutations' direct resolvers answer exactly as strawberry's resolvers of the same fields.

``build_schema`` installs ``DIRECT_RESOLVERS`` over strawberry's; with them removed, the schema
runs the ``Mutation`` methods through strawberry's argument conversion. The same requests to a
server of each kind must get the same answers (job ids aside) and store the same jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api import mutations
from api.inputs import SubmitJobInput, submit_request
from core.ports import JobFilter
from tests.api.helpers import ALICE, BOB, Server, api_settings, make_jwt, run_server

FIELDS = (
    "__typename ... on Job { type status payload priority maxAttempts owner } "
    "... on UserError { code message field }"
)
SUBMIT = f"mutation($input: SubmitJobInput!) {{ submitJob(input: $input) {{ {FIELDS} }} }}"
SUBMIT_MANY = f"mutation($inputs: [SubmitJobInput!]!) {{ submitJobs(inputs: $inputs) {{ {FIELDS} }} }}"

INPUTS: list[dict[str, Any]] = [
    {"type": "noop", "payload": {"a": [1, 2, {"b": None}]}},
    {"type": "noop", "payload": 3, "priority": 7, "delaySeconds": 0, "maxAttempts": 2, "timeoutSeconds": 9},
    {"type": "noop", "payload": {}, "priority": None, "delaySeconds": None, "maxAttempts": None},
    {"type": "noop", "payload": {}, "idempotencyKey": "k-1"},
    {"type": "noop", "payload": {}, "idempotencyKey": "k-1"},
    {"type": "nope", "payload": {}},
    {"type": "noop", "payload": {"x": "y" * 5000}},
    {"type": "noop", "payload": {}, "priority": 10**6},
    {"type": "noop", "payload": {}, "delaySeconds": -1},
    {"type": "noop", "payload": {}, "maxAttempts": 0},
    {"type": "noop", "payload": {}, "timeoutSeconds": -5},
    {"type": "noop", "payload": {}, "idempotencyKey": ""},
    {"type": "noop"},
    {"type": 1, "payload": {}},
    {"type": "noop", "payload": {}, "unknown": 1},
]


def test_submit_request_is_what_the_input_object_gives() -> None:
    """The direct resolvers build the ``SubmitRequest`` strawberry's input object gives."""
    value = {
        "type": "noop",
        "payload": {"k": [1]},
        "priority": None,
        "delaySeconds": 30,
        "maxAttempts": 4,
        "timeoutSeconds": None,
        "idempotencyKey": "key",
    }
    expected = SubmitJobInput(
        type="noop",
        payload={"k": [1]},
        priority=None,
        delay_seconds=30,
        max_attempts=4,
        timeout_seconds=None,
        idempotency_key="key",
    ).to_request()
    assert submit_request(value) == expected
    assert submit_request({"type": "t", "payload": 1}) == SubmitJobInput(type="t", payload=1).to_request()


async def _answers(server: Server) -> list[Any]:
    expired = make_jwt("alice", expires_in=-60)
    answers: list[Any] = []
    for token in (ALICE, BOB):
        for value in INPUTS:
            answers.append(await server.graphql(token, SUBMIT, input=value))
        answers.append(await server.graphql(token, SUBMIT_MANY, inputs=INPUTS[:12]))
        answers.append(await server.graphql(token, SUBMIT_MANY, inputs=[]))
    answers.append(await server.graphql(expired, SUBMIT, input=INPUTS[0]))
    answers.append(await server.graphql(expired, SUBMIT_MANY, inputs=INPUTS[:2]))
    stored = sorted(
        repr((j.owner, j.type, j.payload, j.priority, j.max_attempts, j.timeout_seconds, j.idempotency_key))
        for j in await server.service.store.list_jobs(JobFilter(), 1000, None)
    )
    answers.append(stored)
    return answers


async def test_direct_and_strawberry_resolvers_answer_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct resolvers answer every submit exactly as strawberry's resolvers do."""
    async with run_server(api_settings(tmp_path / "direct")) as server:
        direct = await _answers(server)
    monkeypatch.setattr(mutations, "DIRECT_RESOLVERS", {})
    async with run_server(api_settings(tmp_path / "strawberry")) as server:
        reference = await _answers(server)
    assert direct == reference
    assert any("'Job'" in repr(a) for a in direct)
    assert any("UserError" in repr(a) for a in direct)
    assert any("errors" in a for a in direct if isinstance(a, dict))
