"""``jobpulse pause TYPE`` and ``jobpulse resume TYPE`` against a running server."""

from __future__ import annotations

from tests.cli.conftest import ADMIN, ALICE, RunCli
from tests.support.graphql import gql_http
from tests.support.process import JobpulseProcess

TYPES = "{ jobTypes { name paused } }"


def paused(server: JobpulseProcess, name: str) -> bool:
    types = gql_http(server.url, ADMIN, TYPES)["data"]["jobTypes"]
    return bool(next(t for t in types if t["name"] == name)["paused"])


def test_pause_then_resume_a_type(cli: RunCli, server: JobpulseProcess) -> None:
    """pause says so and the type is paused; resume says so and it is not."""
    result = cli("pause", "image_resize")  # a type no other CLI test runs: the server is shared
    assert (result.returncode, result.stdout.strip()) == (0, "image_resize paused")
    assert paused(server, "image_resize")
    result = cli("resume", "image_resize")
    assert (result.returncode, result.stdout.strip()) == (0, "image_resize resumed")
    assert not paused(server, "image_resize")


def test_pause_of_an_unknown_type_is_one_line_and_exit_1(cli: RunCli) -> None:
    """An unknown type is refused with its code and field."""
    result = cli("pause", "no_such_type")
    assert result.returncode == 1
    assert "NOT_FOUND (type)" in result.stderr


def test_a_user_may_not_pause(cli: RunCli) -> None:
    """A user's pause is refused (FORBIDDEN) with a non-zero exit."""
    result = cli("pause", "image_resize", token=ALICE)
    assert result.returncode != 0
    assert "FORBIDDEN" in result.stderr or "admin" in result.stderr
