"""``jobpulse flow submit FILE.json [--watch]``: submits a flow, follows it as a live tree."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import ALICE, JOB_ID, RunCli


def write_flow(tmp_path: Path, *jobs: dict[str, object]) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"name": "cli-flow", "jobs": list(jobs)}))
    return str(path)


def noop(key: str, *after: str) -> dict[str, object]:
    return {"key": key, "job": {"type": "noop", "payload": {}}, "after": list(after)}


def test_flow_submit_watch_follows_the_flow_to_completed(cli: RunCli, tmp_path: Path) -> None:
    """--watch shows every job of the flow and exits 0 once the flow COMPLETED."""
    path = write_flow(tmp_path, noop("resize"), noop("analyse", "resize"), noop("notify", "analyse"))
    result = cli("flow", "submit", path, "--watch", token=ALICE)
    assert result.returncode == 0, result.stderr
    assert JOB_ID.match(result.stdout.strip())
    assert "COMPLETED" in result.stderr
    assert all(key in result.stderr for key in ("resize", "analyse", "notify"))


def test_flow_submit_refusal_names_the_key(cli: RunCli, tmp_path: Path) -> None:
    """A cycle is refused: exit 2 with VALIDATION and the key."""
    path = write_flow(tmp_path, noop("a", "b"), noop("b", "a"))
    result = cli("flow", "submit", path, token=ALICE)
    assert result.returncode == 2
    assert "VALIDATION" in result.stderr
