"""Every client command fails the same way: one clear line, and an exit code that says why."""

from __future__ import annotations

import pytest

from tests.cli.conftest import RunCli

NOBODY = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.mark.parametrize(
    "args",
    [("submit", "noop", "{}"), ("submit", "noop", "{}", "--watch"), ("jobs",), ("stats",)],
    ids=["submit", "submit-watch", "jobs", "stats"],
)
def test_an_unreachable_server_is_one_line_and_exit_1(cli: RunCli, args: tuple[str, ...]) -> None:
    """A --url nobody listens on: exit 1 and one line naming the URL, no traceback."""
    result = cli(*args, "--url", NOBODY)
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (1, 1), result.stderr
    assert lines[0].startswith(f"cannot reach jobpulse at {NOBODY}")


def test_submit_without_a_token_says_how_to_give_one(cli: RunCli) -> None:
    """``submit`` with no token: exit 2, the server's UNAUTHENTICATED and the --token/JOBPULSE_TOKEN hint."""
    result = cli("submit", "noop", "{}", token=None)
    assert result.returncode == 2
    assert "UNAUTHENTICATED" in result.stderr and "--token" in result.stderr
    assert "JOBPULSE_TOKEN" in result.stderr and "Traceback" not in result.stderr
