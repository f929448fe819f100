"""Apollo Client and urql, in node, against a real ``jobpulse serve`` on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.js.conftest import node
from tests.support.process import JobpulseProcess


def statuses(lines: list[dict[str, Any]]) -> list[str]:
    return [line["update"]["status"] for line in lines if "update" in line]


def assert_followed_to_completion(lines: list[dict[str, Any]]) -> None:
    """The updates of a held job: seen before it was released, then to COMPLETED, versions rising."""
    updates = [line["update"] for line in lines if "update" in line]
    assert updates[0]["status"] in {"PENDING", "PROCESSING"}
    assert updates[-1]["status"] == "COMPLETED"
    versions = [update["version"] for update in updates]
    assert versions == sorted(set(versions))
    assert lines[-1] == {"completed": True}


def test_apollo_query_and_mutation(served: JobpulseProcess, node_modules: Path, tmp_path: Path) -> None:
    """Apollo Client over HTTP submits a job (mutation) and reads it back (query)."""
    [line] = node("apollo_query.mjs", served, tmp_path)
    assert line["submitted"]["__typename"] == "Job"
    assert line["job"]["id"] == line["submitted"]["id"]
    assert (line["job"]["type"], line["job"]["owner"], line["job"]["payload"]) == (
        "noop", "alice", {"note": "from apollo"},
    )  # fmt: skip


def test_apollo_subscription_over_graphql_ws(
    served: JobpulseProcess, node_modules: Path, tmp_path: Path
) -> None:
    """Apollo Client's GraphQLWsLink follows a job from before it is released until COMPLETED."""
    assert_followed_to_completion(node("apollo_ws.mjs", served, tmp_path))


def test_apollo_subscription_over_http_multipart(
    served: JobpulseProcess, node_modules: Path, tmp_path: Path
) -> None:
    """Apollo Client's HttpLink alone (multipart, no websocket) follows a job until COMPLETED."""
    assert_followed_to_completion(node("apollo_multipart.mjs", served, tmp_path))


def test_urql_subscription_over_graphql_ws(
    served: JobpulseProcess, node_modules: Path, tmp_path: Path
) -> None:
    """urql with graphql-ws submits a job and follows it until COMPLETED."""
    assert_followed_to_completion([*node("urql_ws.mjs", served, tmp_path)])
