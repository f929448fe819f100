"""``jobpulse jobs``: a table of jobs, newest first, filtered by status and type, limited in length."""

from __future__ import annotations

from tests.cli.conftest import ALICE, BOB, RunCli, job_rows, submit, wait_for_status
from tests.support.process import JobpulseProcess


def test_lists_jobs_newest_first_with_their_columns(server: JobpulseProcess, cli: RunCli) -> None:
    """Two jobs just submitted head the table, the newer first, with type, status and attempts."""
    older = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    newer = submit(server, ALICE, type="sleep", payload={"seconds": 1}, delaySeconds=3600)
    result = cli("jobs", token=ALICE)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "ID" in line)
    for column in ("TYPE", "STATUS", "PROGRESS", "ATTEMPTS", "OWNER", "CREATED", "MESSAGE"):
        assert column in header
    rows = job_rows(result.stdout)
    assert [row[0] for row in rows[:2]] == [newer, older]
    assert rows[0][1:6] == ["sleep", "PENDING", "0%", "0/3", "alice"]


def test_filters_by_status(server: JobpulseProcess, cli: RunCli) -> None:
    """--status shows only jobs in the statuses given (comma-separated or repeated, any case)."""
    pending = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    completed = submit(server, ALICE, type="noop", payload={})
    wait_for_status(server, ALICE, completed, "COMPLETED")
    only_pending = cli("jobs", "--status", "pending", "--limit", "500", token=ALICE)
    both = cli("jobs", "-s", "PENDING,completed", "-s", "FAILED", "--limit", "500", token=ALICE)
    pending_ids = {row[0] for row in job_rows(only_pending.stdout)}
    assert pending in pending_ids and completed not in pending_ids
    assert {row[2] for row in job_rows(only_pending.stdout)} == {"PENDING"}
    assert {pending, completed} <= {row[0] for row in job_rows(both.stdout)}


def test_filters_by_type(server: JobpulseProcess, cli: RunCli) -> None:
    """--type shows only jobs of that type."""
    gate = submit(server, ALICE, type="gate", payload={"path": "/nonexistent"}, delaySeconds=3600)
    submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    rows = job_rows(cli("jobs", "--type", "gate", token=ALICE).stdout)
    assert gate in {row[0] for row in rows}
    assert {row[1] for row in rows} == {"gate"}


def test_limit_caps_the_rows_and_says_how_many_there_are(server: JobpulseProcess, cli: RunCli) -> None:
    """--limit 2 prints two rows and a caption with the total that matched."""
    for _ in range(3):
        submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    result = cli("jobs", "--limit", "2", token=ALICE)
    assert len(job_rows(result.stdout)) == 2
    assert "2 of " in result.stdout and "jobs, newest first" in result.stdout


def test_a_user_sees_only_its_own_jobs(server: JobpulseProcess, cli: RunCli) -> None:
    """Bob's listing never shows Alice's jobs."""
    alices = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    bobs = submit(server, BOB, type="noop", payload={}, delaySeconds=3600)
    rows = job_rows(cli("jobs", "--limit", "500", token=BOB).stdout)
    assert bobs in {row[0] for row in rows} and alices not in {row[0] for row in rows}
    assert {row[5] for row in rows} == {"bob"}


def test_an_unknown_status_is_refused(cli: RunCli) -> None:
    """--status with a status that does not exist exits 2 and names the valid ones."""
    result = cli("jobs", "--status", "DONE")
    assert result.returncode == 2
    assert "unknown status DONE" in result.stderr and "PENDING" in result.stderr


def test_a_wrong_token_is_a_clear_error(cli: RunCli) -> None:
    """A token the server does not know: exit 2 and the server's reason, no traceback."""
    result = cli("jobs", token="not-a-token")
    assert result.returncode == 2
    assert "invalid token (UNAUTHENTICATED)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_token_says_how_to_give_one(cli: RunCli) -> None:
    """No token at all: exit 2 and a hint to pass --token or set JOBPULSE_TOKEN."""
    result = cli("jobs", token=None)
    assert result.returncode == 2
    assert "UNAUTHENTICATED" in result.stderr and "JOBPULSE_TOKEN" in result.stderr
