"""``jobpulse schedule add`` and ``jobpulse schedules``: create from the command line, list as a table."""

from __future__ import annotations

from tests.cli.conftest import ALICE, BOB, RunCli


def test_add_prints_the_id_and_the_next_runs(cli: RunCli) -> None:
    """schedule add creates a schedule, prints its id, and previews its next five runs in words."""
    result = cli(
        "schedule",
        "add",
        "nightly",
        "0 3 * * *",
        "noop",
        '{"note": "n"}',
        "--timezone",
        "Europe/Berlin",
        token=ALICE,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 36
    assert "At 03:00 every day" in result.stderr
    assert result.stderr.count(":00:00") == 5


def test_schedules_lists_them_as_a_table(cli: RunCli) -> None:
    """schedules shows the caller's schedules with cron, state and next run."""
    cli("schedule", "add", "hourly-b", "0 * * * *", "noop", token=BOB)
    schedule_id = cli("schedule", "add", "pausable", "0 * * * *", "noop", token=BOB).stdout.strip()
    assert cli("schedule", "pause", schedule_id, token=BOB).returncode == 0
    result = cli("schedules", token=BOB)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[1]: line
        for line in result.stdout.splitlines()
        if line.strip().startswith(schedule_id[:8])
    }
    assert "paused" in rows["pausable"]
    assert "hourly-b" in result.stdout and "nightly" not in result.stdout


def test_add_refuses_a_bad_cron_with_its_field(cli: RunCli) -> None:
    """An invalid cron exits 1 and names the field."""
    result = cli("schedule", "add", "broken", "99 * * * *", "noop", token=ALICE)
    assert result.returncode == 1
    assert "VALIDATION (cron)" in result.stderr


def test_run_submits_a_job_now(cli: RunCli) -> None:
    """schedule run prints the id of a job submitted at once."""
    schedule_id = cli("schedule", "add", "manual", "0 0 1 1 *", "noop", token=ALICE).stdout.strip()
    result = cli("schedule", "run", schedule_id, token=ALICE)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 36
