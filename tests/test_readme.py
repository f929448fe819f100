"""The README tells a newcomer what the code does: its token, its commands, its settings' defaults."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_admin_token_is_shown_without_a_prefix_tokens_do_not_have() -> None:
    """The tour's token line shows no ``jp_`` prefix: generated tokens are plain URL-safe text."""
    [line] = [line for line in README.splitlines() if line.strip().startswith("Token:")]
    assert "jp_" not in line


def test_the_commands_table_lists_jobs_and_stats() -> None:
    """The README's commands table has a row for each command a newcomer meets, ``jobs`` and ``stats`` too."""
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `jobpulse ([a-z-]+)", table, flags=re.MULTILINE))
    assert {"serve", "api", "worker", "submit", "jobs", "stats", "export-schema"} <= listed


def test_the_lease_default_in_the_table_is_the_settings_default() -> None:
    """The configuration table's ``JOBPULSE_VISIBILITY_TIMEOUT`` default is the one ``Settings`` has."""
    [row] = [line for line in README.splitlines() if line.startswith("| `JOBPULSE_VISIBILITY_TIMEOUT`")]
    assert row.rstrip(" |").rsplit("|", 1)[1].strip() == f"{Settings().visibility_timeout:g}"
