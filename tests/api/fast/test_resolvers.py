"""The submit mutations' fast resolvers answer exactly as strawberry's resolvers of the same fields.

The fast schema resolves ``submitJob``/``submitJobs`` from graphql-core's coerced arguments
(``api.fast.resolvers``); the stock schema runs the ``Mutation`` methods through strawberry's
argument conversion. The same requests to a server of each kind must get the same bytes back
and store the same jobs.
"""

from __future__ import annotations

from typing import Any

from api.fast.resolvers import submit_input
from api.inputs import SubmitJobInput
from tests.api.fast.conftest import ServerSettings
from tests.api.fast.harness import Call, fast_and_stock
from tests.api.helpers import ALICE, BOB, make_jwt

FIELDS = (
    "__typename ... on Job { type status payload priority maxAttempts owner } "
    "... on UserError { code message field }"
)
SUBMIT = f"mutation($input: SubmitJobInput!) {{ submitJob(input: $input) {{ {FIELDS} }} }}"
SUBMIT_MANY = f"mutation($inputs: [SubmitJobInput!]!) {{ submitJobs(inputs: $inputs) {{ {FIELDS} }} }}"

INPUTS: list[dict[str, Any]] = [
    {"type": "noop", "payload": {"a": [1, 2, {"b": None}], "s": "é"}},
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


def calls() -> list[Call]:
    expired = make_jwt("alice", expires_in=-60)
    result: list[Call] = []
    for token in (ALICE, BOB):
        result += [Call(SUBMIT, {"input": value}, token) for value in INPUTS]
        result.append(Call(SUBMIT_MANY, {"inputs": INPUTS[:12]}, token))
        result.append(Call(SUBMIT_MANY, {"inputs": []}, token))
    result.append(Call(SUBMIT, {"input": INPUTS[0]}, expired))
    result.append(Call(SUBMIT_MANY, {"inputs": INPUTS[:2]}, expired))
    return result


def test_submit_input_is_the_input_strawberry_builds() -> None:
    """A coerced value becomes the ``SubmitJobInput`` its fields name, defaults kept for the rest."""
    value = {"type": "noop", "payload": {"k": [1]}, "priority": None, "delaySeconds": 30, "maxAttempts": 4}
    assert submit_input(value) == SubmitJobInput(
        type="noop", payload={"k": [1]}, priority=None, delay_seconds=30, max_attempts=4
    )
    assert submit_input({"type": "t", "payload": 1}) == SubmitJobInput(type="t", payload=1)


async def test_fast_and_stock_submits_answer_and_store_alike(server_settings: ServerSettings) -> None:
    """Every submit, accepted or refused, gets the same bytes and stores the same jobs on both paths."""
    fast, stock = await fast_and_stock(server_settings, calls())
    assert fast.answers == stock.answers
    assert fast.stored == stock.stored
    bodies = repr(fast.answers)
    assert '"__typename":"Job"' in bodies and "UserError" in bodies and '"errors"' in bodies
