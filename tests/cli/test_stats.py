"""``jobpulse stats``: the admin's view of counts, failure rate, processing time and queue depths."""

from __future__ import annotations

from tests.cli.conftest import ALICE, RunCli, submit
from tests.support.process import JobpulseProcess


def test_stats_show_totals_and_a_row_per_type(server: JobpulseProcess, cli: RunCli) -> None:
    """An admin sees the totals, failure rate, processing time, queue depths and every job type."""
    submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    result = cli("stats")
    assert result.returncode == 0, result.stderr
    for label in (
        "total jobs",
        "pending",
        "failure rate",
        "average processing time",
        "queue depth",
        "dead-letter depth",
    ):
        assert label in result.stdout
    types = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"data_analysis", "image_resize", "webhook", "noop", "sleep"} <= types


def test_stats_are_for_admins_only(cli: RunCli) -> None:
    """A user's token: exit 2 with the server's FORBIDDEN reason."""
    result = cli("stats", token=ALICE)
    assert result.returncode == 2
    assert "FORBIDDEN" in result.stderr and "Traceback" not in result.stderr
