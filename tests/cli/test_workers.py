"""``jobpulse workers``: the workers registry as a table."""

from __future__ import annotations

from tests.cli.conftest import ALICE, RunCli


def test_workers_shows_serves_in_process_worker(cli: RunCli) -> None:
    """``serve``'s in-process worker is listed ACTIVE with its process and job types."""
    result = cli("workers")
    assert result.returncode == 0, result.stderr
    [row] = [line.split() for line in result.stdout.splitlines() if "ACTIVE" in line]
    assert "noop" in row[4]


def test_workers_are_for_admins_only(cli: RunCli) -> None:
    """A user's token: exit 2 with the server's FORBIDDEN reason."""
    result = cli("workers", token=ALICE)
    assert result.returncode == 2
    assert "FORBIDDEN" in result.stderr and "Traceback" not in result.stderr
