"""The schema keeps API.md's contract, and schema.graphql is the schema the code builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLUnionType,
    Undefined,
    ast_from_value,
    print_ast,
)
from graphql import build_schema as build_sdl

from api.schema import build_schema
from core.settings import Settings

#: the minimum schema of API.md, verbatim (descriptions dropped)
CONTRACT = """
scalar JSON
scalar DateTime
enum JobStatus { PENDING PROCESSING COMPLETED FAILED CANCELLED WAITING }
enum LogLevel { DEBUG INFO WARNING ERROR }
enum ErrorCode { VALIDATION UNKNOWN_JOB_TYPE NOT_FOUND INVALID_STATE PAYLOAD_TOO_LARGE RATE_LIMITED }
enum JobEventKind { CREATED STARTED PROGRESS LOG RETRYING COMPLETED FAILED CANCELLED }
type Job {
  id: ID! type: String! status: JobStatus! payload: JSON! result: JSON error: String progress: Float!
  progressMessage: String attempts: Int! maxAttempts: Int! priority: Int! owner: String!
  idempotencyKey: String version: Int! createdAt: DateTime! updatedAt: DateTime! runAt: DateTime
  startedAt: DateTime completedAt: DateTime logs(last: Int = 100): [JobLog!]!
  dependsOn: [Job!]! dependents: [Job!]! flow: Flow dependencyResults: JSON
}
type JobLog { at: DateTime! level: LogLevel! message: String! }
type UserError { code: ErrorCode! message: String! field: String }
union JobResult = Job | UserError
input SubmitJobInput {
  type: String! payload: JSON! priority: Int = 0 delaySeconds: Int = 0 maxAttempts: Int
  timeoutSeconds: Int idempotencyKey: String
  dependsOn: [ID!] onDependencyFailure: DependencyFailure = FAIL expiresInSeconds: Int
}
enum DependencyFailure { FAIL RUN }
input FlowJobInput { key: String! job: SubmitJobInput! after: [String!] }
input SubmitFlowInput { name: String, jobs: [FlowJobInput!]! }
enum FlowStatus { RUNNING COMPLETED FAILED CANCELLED }
type Flow {
  id: ID! name: String owner: String! status: FlowStatus! progress: Float! jobs: [FlowJob!]!
  createdAt: DateTime! completedAt: DateTime
}
type FlowJob { key: String! job: Job! after: [String!]! }
union FlowResult = Flow | UserError
type FlowEdge { cursor: String! node: Flow! }
type FlowConnection { edges: [FlowEdge!]! pageInfo: PageInfo! totalCount: Int! }
input JobFilter {
  status: [JobStatus!] type: String owner: String createdAfter: DateTime createdBefore: DateTime
}
type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type JobEdge { cursor: String! node: Job! }
type JobConnection { edges: [JobEdge!]! pageInfo: PageInfo! totalCount: Int! }
type JobType { name: String! description: String! payloadSchema: JSON! maxAttempts: Int! timeoutSeconds: Int! }
type StatusCounts { pending: Int! processing: Int! completed: Int! failed: Int! cancelled: Int! }
type TypeStats { type: String! queueDepth: Int! deadLetterDepth: Int! byStatus: StatusCounts! }
type JobStats {
  totalJobs: Int! byStatus: StatusCounts! averageProcessingTime: Float failureRate: Float!
  queueDepth: Int! deadLetterDepth: Int! byType: [TypeStats!]!
}
type JobEvent { cursor: String! kind: JobEventKind! at: DateTime! message: String job: Job! }
type Query {
  job(id: ID!): Job
  jobs(filter: JobFilter, first: Int = 20, after: String): JobConnection!
  jobTypes: [JobType!]!
  stats: JobStats!
  flow(id: ID!): Flow
  flows(status: [FlowStatus!], first: Int = 20, after: String): FlowConnection!
}
type Mutation {
  submitJob(input: SubmitJobInput!): JobResult!
  submitJobs(inputs: [SubmitJobInput!]!): [JobResult!]!
  cancelJob(id: ID!): JobResult!
  retryJob(id: ID!): JobResult!
  submitFlow(input: SubmitFlowInput!): FlowResult!
  cancelFlow(id: ID!): FlowResult!
  retryFlow(id: ID!): FlowResult!
}
type Subscription {
  jobUpdated(id: ID!): Job!
  flowUpdated(id: ID!): Flow!
  jobEvents(jobId: ID, type: String, after: String): JobEvent!
}
"""

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"

contract = build_sdl(CONTRACT)
ours = build_schema(Settings())._schema
NAMED = sorted(name for name in contract.type_map if not name.startswith("__"))


def _default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    """The default as SDL text (``None`` when there is none, or it is ``null``)."""
    if value.ast_node is not None and value.ast_node.default_value is not None:
        text = print_ast(value.ast_node.default_value)
    elif value.default_value is Undefined:
        return None
    else:
        literal = ast_from_value(value.default_value, value.type)
        text = print_ast(literal) if literal is not None else "null"
    return None if text == "null" else text


@pytest.mark.parametrize("name", NAMED)
def test_contract_type_is_in_the_schema(name: str) -> None:
    """Every type of API.md exists with the same kind, fields, argument types and defaults."""
    theirs: GraphQLNamedType = contract.type_map[name]
    mine = ours.type_map.get(name)
    assert mine is not None, f"{name} is missing"
    assert isinstance(mine, type(theirs))
    if isinstance(theirs, GraphQLObjectType):
        assert isinstance(mine, GraphQLObjectType)
        for field_name, field in theirs.fields.items():
            assert field_name in mine.fields, f"{name}.{field_name} is missing"
            my_field = mine.fields[field_name]
            assert str(my_field.type) == str(field.type), f"{name}.{field_name}"
            for arg_name, arg in field.args.items():
                my_arg = my_field.args[arg_name]
                assert str(my_arg.type) == str(arg.type), f"{name}.{field_name}({arg_name})"
                assert _default(my_arg) == _default(arg), f"{name}.{field_name}({arg_name})"
    elif isinstance(theirs, GraphQLInputObjectType):
        assert isinstance(mine, GraphQLInputObjectType)
        assert set(mine.fields) == set(theirs.fields)
        for field_name, input_field in theirs.fields.items():
            assert str(mine.fields[field_name].type) == str(input_field.type), f"{name}.{field_name}"
            assert _default(mine.fields[field_name]) == _default(input_field), f"{name}.{field_name}"
    elif isinstance(theirs, GraphQLEnumType):
        assert isinstance(mine, GraphQLEnumType)
        assert set(theirs.values) <= set(mine.values)
    elif isinstance(theirs, GraphQLUnionType):
        assert isinstance(mine, GraphQLUnionType)
        assert {t.name for t in mine.types} == {t.name for t in theirs.types}


def test_schema_file_is_the_generated_schema() -> None:
    """schema.graphql at the repository root is what `jobpulse export-schema` prints."""
    assert SCHEMA_FILE.read_text().rstrip("\n") == build_schema(Settings()).as_str().rstrip("\n")
