"""The compiled subscription renderer gives exactly graphql-core's results, errors included."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import parse
from graphql.execution.executor import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.fast.live_render import SubscriptionExecutor, compile_plan, shared_plan
from api.schema import build_schema
from api.types import JobEventNode, JobNode
from core.blobs import LargeValues
from core.models import Job, JobEvent, JobEventKind, JobStatus, LogLevel
from tests.api.helpers import api_settings

JOB_FIELDS = (
    "id type status error progress progressMessage attempts maxAttempts priority owner "
    "idempotencyKey version createdAt updatedAt runAt startedAt completedAt __typename"
)

#: selections the renderer compiles; each must answer exactly as graphql-core does
PLAIN = {
    "every field": f"subscription W($id: ID!) {{ jobUpdated(id: $id) {{ {JOB_FIELDS} }} }}",
    "aliases and merging": """subscription W($id: ID!) { w: jobUpdated(id: $id) {
        a: id id __typename t: __typename s: status status id version v: version } }""",
    "fragments and directives": """subscription W($id: ID!, $yes: Boolean!, $no: Boolean!) {
        jobUpdated(id: $id) {
          ...Parts
          ... on Job { version progress }
          ... @include(if: $yes) { error }
          ... @include(if: $no) { owner }
          runAt @skip(if: $yes)
          startedAt @skip(if: $no)
          completedAt @include(if: $yes)
        } }
        fragment Parts on Job { id status progressMessage ... on Job { createdAt } }""",
    "events, nested job": f"""subscription {{ jobEvents {{
        __typename cursor kind at message level e: kind
        job {{ {JOB_FIELDS} }} again: job {{ id status }} job {{ version }} }} }}""",
}

#: selections with resolvers or arguments: graphql-core executes them as before
NOT_PLAIN = [
    "subscription { jobUpdated(id: 1) { id payload } }",
    "subscription { jobUpdated(id: 1) { logs(last: 2) { message } } }",
    "subscription { jobUpdated(id: 1) { logs { message } } }",
    "subscription { jobUpdated(id: 1) { resultUrl } }",
    "subscription { jobEvents { job { id payloadUrl } } }",
]

VARIABLES = {"id": "j1", "yes": True, "no": False}
T0 = datetime(2026, 11, 25, 9, 30, 1, 123456, tzinfo=UTC)


def _jobs() -> list[Job]:
    plain = Job(id="j1", type="noop", owner="alice", payload=None, created_at=T0, updated_at=T0)
    full = Job(
        id="01934b6e-0000-7000-8000-000000000001",
        type="résumé-ünïcode",
        owner="bob",
        payload=None,
        status=JobStatus.FAILED,
        version=2_147_483_647,
        priority=-5,
        max_attempts=9,
        attempts=3,
        progress=42.5,
        progress_message='half "way" \u2603 \n',
        error="boom",
        idempotency_key="k-1",
        created_at=T0,
        updated_at=T0 + timedelta(seconds=3),
        run_at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        started_at=T0 + timedelta(microseconds=1),
        completed_at=T0 + timedelta(days=1),
    )
    whole_progress = Job(
        id="j3",
        type="noop",
        owner="alice",
        payload=None,
        status=JobStatus.PROCESSING,
        progress=100.0,
        progress_message="",
        created_at=datetime(2026, 11, 25, 9, 30),  # naive, as a bad backend might give
        updated_at=T0,
    )
    return [plain, full, whole_progress]


def _events() -> list[JobEvent]:
    jobs = _jobs()
    return [
        JobEvent(job_id=jobs[0].id, version=1, kind=JobEventKind.CREATED, at=T0, job=jobs[0]),
        JobEvent(
            job_id=jobs[1].id,
            version=jobs[1].version,
            kind=JobEventKind.LOG,
            at=T0,
            job=jobs[1],
            message="line",
            level=LogLevel.WARNING,
        ),
    ]


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_schema(api_settings(Path(tmp_path_factory.mktemp("data"))))._schema


def _executor(schema: Any, cls: type[Executor], query: str, context: object = None) -> Executor:
    executor = cls.build(schema, parse(query), raw_variable_values=VARIABLES, context_value=context)
    assert isinstance(executor, Executor), executor
    return executor


async def _result(executor: Executor, payload: object) -> tuple[bytes, list[Any] | None]:
    result = executor.build_per_event_executor(payload).execute_operation(False)
    if inspect.isawaitable(result):
        result = await result
    errors = [e.formatted for e in result.errors] if result.errors else None
    return orjson.dumps(result.data), errors  # bytes: key order counts too


def _payloads(query: str) -> list[object]:
    if "jobEvents" in query:
        return [JobEventNode.of(e) for e in _events()]
    return [JobNode.of(j) for j in _jobs()]


@pytest.mark.parametrize("name", list(PLAIN))
async def test_plain_selections_compile_and_render_as_graphql_core(schema: Any, name: str) -> None:
    """A plain-field selection compiles and renders the bytes graphql-core gives."""
    query = PLAIN[name]
    fast = _executor(schema, SubscriptionExecutor, query)
    slow = _executor(schema, StrawberryGraphQLCoreExecutionContext, query)
    assert compile_plan(fast) is not None
    for payload in _payloads(query):
        assert type(fast.build_per_event_executor(payload)) is not type(fast)  # rendered, not executed
        assert await _result(fast, payload) == await _result(slow, payload)


@pytest.mark.parametrize("query", NOT_PLAIN)
def test_selections_with_resolvers_or_arguments_keep_graphql_core(schema: Any, query: str) -> None:
    """A selection with resolvers or arguments does not compile and keeps graphql-core."""
    executor = _executor(schema, SubscriptionExecutor, query)
    assert compile_plan(executor) is None
    assert type(executor.build_per_event_executor(_payloads(query)[0])) is SubscriptionExecutor


def _broken(**changes: Any) -> JobNode:
    node = JobNode.of(_jobs()[1])
    for name, value in changes.items():
        setattr(node, name, value)
    return node


@pytest.mark.parametrize(
    "payload",
    [
        _broken(status=None),  # null in a non-null field
        _broken(version=2**40),  # beyond GraphQL's Int
        _broken(status="NOT_A_STATUS"),  # not a value of the enum
        _broken(status="FAILED"),  # a plain string where the enum is expected
        _broken(progress="half"),  # not a Float
        _broken(created_at="yesterday"),  # not a datetime
        _broken(error=ValueError("an exception as a value")),
        None,  # no event at all
    ],
    ids=["null", "int-range", "enum-value", "enum-string", "float", "datetime", "exception", "none"],
)
async def test_values_graphql_core_refuses_give_its_errors(schema: Any, payload: object) -> None:
    """A value graphql-core refuses gives graphql-core's errors, not a rendered result."""
    query = PLAIN["every field"]
    fast = _executor(schema, SubscriptionExecutor, query)
    slow = _executor(schema, StrawberryGraphQLCoreExecutionContext, query)
    assert await _result(fast, payload) == await _result(slow, payload)


async def test_a_nested_null_in_a_non_null_field_gives_graphql_core_errors(schema: Any) -> None:
    """A null in a nested non-null field gives graphql-core's errors."""
    query = PLAIN["events, nested job"]
    event = JobEventNode.of(_events()[1])
    event.job = _broken(owner=None)
    fast = _executor(schema, SubscriptionExecutor, query)
    slow = _executor(schema, StrawberryGraphQLCoreExecutionContext, query)
    fast_result = await _result(fast, event)
    assert fast_result == await _result(slow, event)
    assert fast_result[1]  # the error is reported


class _Service:
    """What the ``result`` resolver reads from the context: the service's blobs (no store)."""

    blobs = LargeValues(None, threshold_bytes=64, inline_max_bytes=64, presign_seconds=60, cache_bytes=0)


class _Context:
    service = _Service()


RESULTS: list[object] = [None, {"count": 4, "mean": 2.5, "nested": [1, {"a": None}]}, [], "text", 0]


@pytest.mark.parametrize("result", RESULTS, ids=["null", "object", "empty-list", "string", "zero"])
async def test_result_renders_as_its_resolver_gives_it(schema: Any, result: object) -> None:
    """``result`` (a resolver field with a live value) compiles and renders what its resolver gives."""
    query = "subscription W($id: ID!) { jobUpdated(id: $id) { id status progress result } }"
    fast = _executor(schema, SubscriptionExecutor, query, _Context())
    slow = _executor(schema, StrawberryGraphQLCoreExecutionContext, query, _Context())
    assert compile_plan(fast) is not None
    payload = JobNode.of(Job(id="j1", type="noop", owner="alice", payload=None, result=result))
    assert type(fast.build_per_event_executor(payload)) is not type(fast)  # rendered, not executed
    assert await _result(fast, payload) == await _result(slow, payload)


async def test_a_blob_reference_result_is_left_to_its_resolver(schema: Any) -> None:
    """A result kept as a blob reference is not rendered: graphql-core runs the resolver for that event."""
    query = "subscription W($id: ID!) { jobUpdated(id: $id) { id result } }"
    fast = _executor(schema, SubscriptionExecutor, query, _Context())
    reference = {"$jobpulse_blob": "file://results/j1/1-abc.json", "bytes": 10, "sha256": "0" * 64}
    payload = JobNode.of(Job(id="j1", type="noop", owner="alice", payload=None, result=reference))
    assert type(fast.build_per_event_executor(payload)) is SubscriptionExecutor


def test_subscriptions_of_one_document_share_its_plan(schema: Any) -> None:
    """Two subscriptions of one parsed document without directives share one plan, whatever their variables."""
    document = parse("subscription W($id: ID!) { jobUpdated(id: $id) { id status result } }")
    first = Executor.build(schema, document, raw_variable_values={"id": "a"})
    second = Executor.build(schema, document, raw_variable_values={"id": "b"})
    assert isinstance(first, Executor) and isinstance(second, Executor)
    plan = shared_plan(first)
    assert plan is not None and shared_plan(second) is plan


def test_a_document_with_directives_is_planned_per_subscription(schema: Any) -> None:
    """With ``@include``, each subscription's plan follows its own variables, as graphql-core does."""
    document = parse(
        "subscription W($id: ID!, $yes: Boolean!) { jobUpdated(id: $id) { id error @include(if: $yes) } }"
    )
    keys = []
    for yes in (True, False):
        executor = Executor.build(schema, document, raw_variable_values={"id": "a", "yes": yes})
        assert isinstance(executor, Executor)
        plan = shared_plan(executor)
        assert plan is not None
        keys.append([entry[0] for entry in plan[1].fields])
    assert keys == [["id", "error"], ["id"]]
