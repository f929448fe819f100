"""``jobpulse cancel`` and ``jobpulse retry``: every job the options match, the count printed."""

from __future__ import annotations

from tests.cli.conftest import ALICE, BOB, RunCli, submit, wait_for_status
from tests.support.process import JobpulseProcess


def test_cancel_then_retry_print_their_counts(server: JobpulseProcess, cli: RunCli) -> None:
    """`cancel --status PENDING --type T` cancels the caller's matching jobs; `retry` brings them back."""
    # `collect` is this file's own type here: no other CLI test's jobs match.
    ids = [submit(server, BOB, type="collect", payload={}, delaySeconds=3600) for _ in range(2)]
    alices = submit(server, ALICE, type="collect", payload={}, delaySeconds=3600)
    cancelled = cli("cancel", "--status", "PENDING", "--type", "collect", token=BOB)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == "2"
    assert "2 jobs cancelled" in cancelled.stderr
    for job_id in ids:
        wait_for_status(server, BOB, job_id, "CANCELLED", timeout=1)
    wait_for_status(server, ALICE, alices, "PENDING", timeout=1)
    retried = cli("retry", "--status", "failed,cancelled", "-t", "collect", token=BOB)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "2"
    assert cli("retry", "--type", "collect", token=BOB).stdout.strip() == "0"


def test_an_unknown_status_is_one_line_and_exit_2(cli: RunCli) -> None:
    """`cancel --status DONE` names the statuses there are and changes nothing."""
    result = cli("cancel", "--status", "DONE")
    assert result.returncode == 2
    assert "unknown status DONE" in result.stderr and "PENDING" in result.stderr


def test_no_token_is_refused_with_the_hint(cli: RunCli) -> None:
    """Without a token the command says the server refused it and how to pass one."""
    result = cli("cancel", "--type", "collect", token=None)
    assert result.returncode == 2
    assert "--token" in result.stderr
