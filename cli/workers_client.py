"""``jobpulse workers``: the workers registry as a table (admin token)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.client import _age, _query

__all__ = ["show_workers"]

WORKERS = """
query Workers {
  workers {
    id host pid version types concurrency status processed failed startedAt lastSeenAt running { id }
  }
}
"""

STATUS_COLOURS = {"ACTIVE": "green", "DRAINING": "yellow", "LOST": "red"}


async def show_workers(console: Console, out: Console, url: str, token: str | None) -> None:
    """Print every worker seen in the last hour: status, running jobs, counts, last heartbeat."""
    workers = (await _query(console, url, token, WORKERS, {}))["workers"]
    if not workers:
        console.print("no workers seen in the last hour")
        return
    now = datetime.now(UTC)
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(workers)} workers", caption_justify="left")
    for header in (
        "ID",
        "STATUS",
        "HOST",
        "PID",
        "TYPES",
        "RUNNING",
        "PROCESSED",
        "FAILED",
        "STARTED",
        "SEEN",
    ):
        table.add_column(
            header, no_wrap=True, justify="right" if header in ("PID", "PROCESSED", "FAILED") else "left"
        )
    for worker in workers:
        table.add_row(
            worker["id"],
            Text(worker["status"], style=STATUS_COLOURS.get(worker["status"], "")),
            worker["host"],
            str(worker["pid"]),
            ",".join(worker["types"]),
            f"{len(worker['running'])}/{worker['concurrency']}",
            str(worker["processed"]),
            str(worker["failed"]),
            _age(worker["startedAt"], now),
            _age(worker["lastSeenAt"], now),
        )
    out.print(table)
