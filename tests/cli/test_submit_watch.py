"""``jobpulse submit --watch``: follows the job live, shows its log lines, exits 0 only on COMPLETED."""

from __future__ import annotations

import os
import re
import subprocess

from tests.cli.conftest import ALICE, JOB_ID, RunCli
from tests.support.process import REPO, JobpulseProcess, jobpulse_command


def test_watch_shows_log_lines_and_exits_0_when_completed(cli: RunCli) -> None:
    """A sleep job is followed to COMPLETED: its id on stdout, its log line and result on stderr, exit 0."""
    result = cli("submit", "sleep", '{"seconds": 0.4, "steps": 4}', "--watch", token=ALICE)
    assert result.returncode == 0, result.stderr
    assert JOB_ID.match(result.stdout.strip())
    assert "sleeping 0.4s in 4 steps" in result.stderr
    assert "COMPLETED" in result.stderr and '"slept": 0.4' in result.stderr


def test_watch_exits_non_zero_when_the_job_fails(cli: RunCli) -> None:
    """A job that fails for good ends the watch with FAILED, its error, and exit 1."""
    result = cli("submit", "fail", '{"permanent": true, "message": "no such table"}', "--watch", token=ALICE)
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "no such table" in result.stderr


def test_submit_without_watch_prints_the_id(cli: RunCli) -> None:
    """Without --watch, submit prints the new job's id and exits 0."""
    result = cli("submit", "noop", "{}", "--delay", "3600", token=ALICE)
    assert result.returncode == 0, result.stderr
    assert JOB_ID.match(result.stdout.strip())


def test_submit_refusal_is_a_clear_error(cli: RunCli) -> None:
    """An unknown job type: exit 2 with the UserError's code and message."""
    result = cli("submit", "no_such_type", "{}", token=ALICE)
    assert result.returncode == 2
    assert "UNKNOWN_JOB_TYPE" in result.stderr


def test_watch_piped_without_columns_keeps_the_elapsed_time(server: JobpulseProcess) -> None:
    """Piped with no COLUMNS set (rich would assume 80), the progress line still ends with the elapsed time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_") and k != "COLUMNS"}
    env.update({"JOBPULSE_URL": server.url, "JOBPULSE_TOKEN": ALICE, "PYTHONPATH": str(REPO)})
    payload = '{"data": [1, 2, 3, 4, 5]}'  # its progress messages are long
    result = subprocess.run(
        jobpulse_command("submit", "data_analysis", payload, "--watch"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    bar = next(line for line in result.stderr.splitlines() if line.startswith("COMPLETED"))
    assert re.search(r"100%\s+\d+:\d\d:\d\d", bar), bar
