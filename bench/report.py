"""One row per measured figure, and the Markdown table they make."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Row", "machine", "percentile", "table"]


@dataclass
class Row:
    figure: str
    what: str
    measured: str
    baseline: str
    target: str
    met: bool | None  # None: a figure with no target of its own (context for another row)
    notes: str = ""


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): the value pct% of samples are at or below."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _met(row: Row) -> str:
    return "—" if row.met is None else ("**yes**" if row.met else "**no**")


def table(rows: list[Row]) -> str:
    lines = [
        "| # | figure | measured | baseline (same run) | target | met? | CPU (% of one core) and notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.figure} | {r.what} | {r.measured} | {r.baseline} | {r.target} | {_met(r)} | {r.notes} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = os.environ.get("BENCH_COMMIT", "")
    if not commit:
        try:
            here = os.path.dirname(os.path.abspath(__file__))
            commit = (
                subprocess.run(
                    ["git", "-C", here, "rev-parse", "--short", "HEAD"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout.strip()
                or "?"
            )
            dirty = subprocess.run(
                ["git", "-C", here, "status", "--porcelain", "--", "core", "api", "workers"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            commit += " (with uncommitted changes in core/api/workers)" if dirty else ""
        except OSError:
            commit = "?"
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; jobpulse at {commit}; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
