"""What the client commands do: submit a job and watch it live, list jobs, show stats."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cli.http import ClientError, JobpulseClient, UnreachableError
from core.cursors import EventCursor

__all__ = ["list_jobs", "show_stats", "stdout_console", "submit_job", "watch_job"]

SUBMIT = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on Job { id status }
    ... on UserError { code message field }
  }
}
"""

EVENTS = """
subscription Watch($jobId: ID!, $after: String) {
  jobEvents(jobId: $jobId, after: $after) {
    cursor kind message
    job { id type status progress progressMessage attempts maxAttempts error result }
  }
}
"""

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
STATUS_STYLE = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow"}


def fail(console: Console, what: str, exc: ClientError) -> NoReturn:
    """One line saying why, then exit: 1 when the server could not be reached, 2 when it refused."""
    if isinstance(exc, UnreachableError):
        console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    hint = " (pass --token or set JOBPULSE_TOKEN)" if "UNAUTHENTICATED" in str(exc) else ""
    console.print(f"[red]{what} failed:[/red] {escape(str(exc))}{hint}", soft_wrap=True)
    raise typer.Exit(2) from exc


async def submit_job(console: Console, url: str, token: str | None, job_input: dict[str, Any]) -> str:
    """Submit one job; exit with a clear message if the server refuses it."""
    client = JobpulseClient(url, token)
    try:
        data = await client.execute(SUBMIT, {"input": job_input})
    except ClientError as exc:
        fail(console, "submit", exc)
    result = data["submitJob"]
    if result["__typename"] == "UserError":
        where = f" ({result['field']})" if result.get("field") else ""
        console.print(f"[red]{result['code']}[/red]{where}: {result['message']}")
        raise typer.Exit(2)
    return str(result["id"])


async def watch_job(console: Console, url: str, token: str | None, job_id: str) -> str:
    """Follow a job's events until it ends; show progress and log lines; return the final status."""
    client = JobpulseClient(url, token)
    status = "PENDING"
    job: dict[str, Any] = {}
    columns = (
        TextColumn("{task.fields[status]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped, rich would assume 80 columns and cut the line's end: the elapsed time went first.
        console = Console(file=console.file, soft_wrap=True, width=200)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=100, status=status)
        try:
            # From the job's first event: a fast job may have started (and logged) before we subscribed.
            start = EventCursor(0, job_id, 0).encode()
            async for data in client.subscribe(EVENTS, {"jobId": job_id, "after": start}):
                event = data["jobEvents"]
                job = event["job"]
                status = job["status"]
                if event["kind"] == "LOG" and event.get("message"):
                    progress.console.print(f"[dim]log[/dim] {event['message']}")
                elif event["kind"] in ("RETRYING", "FAILED") and event.get("message"):
                    progress.console.print(f"[yellow]{event['kind'].lower()}[/yellow] {event['message']}")
                attempt = f"attempt {job['attempts']}/{job['maxAttempts']}" if job["attempts"] else ""
                progress.update(
                    task,
                    completed=job["progress"],
                    status=status,
                    description=" · ".join(p for p in (job.get("progressMessage"), attempt) if p),
                )
                if status in TERMINAL:
                    break
        except ClientError as exc:
            fail(console, "watch", exc)
    style = STATUS_STYLE.get(status, "white")
    console.print(f"job {job_id} [{style}]{status}[/{style}]")
    if status == "COMPLETED":
        console.print_json(data=job.get("result"))
    elif job.get("error"):
        console.print(f"[red]error:[/red] {job['error']}")
    return status


# -- listing jobs and reading stats ---------------------------------------------------------------

JOBS = """
query Jobs($filter: JobFilter, $first: Int) {
  jobs(filter: $filter, first: $first) {
    totalCount
    edges {
      node { id type status progress progressMessage attempts maxAttempts owner error createdAt runAt }
    }
  }
}
"""

STATS = """
{
  stats {
    totalJobs failureRate averageProcessingTime queueDepth deadLetterDepth
    byStatus { pending processing completed failed cancelled }
    byType { type queueDepth deadLetterDepth byStatus { pending processing completed failed cancelled } }
  }
}
"""

STATUSES = ("PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
STATUS_COLOURS = {"PENDING": "bright_black", "PROCESSING": "blue", **STATUS_STYLE}


async def _query(
    console: Console, url: str, token: str | None, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """Run one query; exit with the server's reason (or why it could not be reached)."""
    try:
        return await JobpulseClient(url, token).execute(query, variables)
    except ClientError as exc:
        fail(console, "request", exc)


def _span(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age(iso: str, now: datetime) -> str:
    return f"{_span(max(0, int((now - datetime.fromisoformat(iso)).total_seconds())))} ago"


def _until(iso: str, now: datetime) -> str:
    seconds = int((datetime.fromisoformat(iso) - now).total_seconds())
    return f"in {_span(seconds)}" if seconds > 0 else "now"


def stdout_console() -> Console:
    """A console for tables on stdout; when piped (and no COLUMNS is set) it is wide, not 80 columns."""
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return Console()
    return Console(width=200)


def _status(status: str) -> Text:
    return Text(status, style=STATUS_COLOURS.get(status, ""))


async def list_jobs(
    console: Console,
    out: Console,
    url: str,
    token: str | None,
    statuses: list[str],
    type: str | None,
    limit: int,
) -> None:
    """Print the newest jobs matching the filters as a table."""
    job_filter: dict[str, Any] = {}
    if statuses:
        job_filter["status"] = statuses
    if type:
        job_filter["type"] = type
    data = await _query(console, url, token, JOBS, {"filter": job_filter, "first": limit})
    jobs = [edge["node"] for edge in data["jobs"]["edges"]]
    total = data["jobs"]["totalCount"]
    now = datetime.now(UTC)
    table = Table(
        box=box.SIMPLE_HEAD, caption=f"{len(jobs)} of {total} jobs, newest first", caption_justify="left"
    )
    rows = []
    for job in jobs:
        message = job["error"] if job["status"] == "FAILED" else job.get("progressMessage") or ""
        if job["status"] == "PENDING" and job.get("runAt"):
            message = f"runs {_until(job['runAt'], now)}"
        rows.append(
            (
                job["id"],
                job["type"],
                job["status"],
                f"{job['progress']:.0f}%",
                f"{job['attempts']}/{job['maxAttempts']}",
                job["owner"],
                _age(job["createdAt"], now),
                message or "",
            )
        )
    headers = ("ID", "TYPE", "STATUS", "PROGRESS", "ATTEMPTS", "OWNER", "CREATED")
    for i, header in enumerate(headers):
        # Every column but the message keeps its full width; the message takes what is left.
        width = max([len(header), *(len(row[i]) for row in rows)])
        table.add_column(header, no_wrap=True, min_width=width, justify="right" if i in (3, 4) else "left")
    table.add_column("MESSAGE", no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*row[:2], _status(row[2]), *row[3:])
    if not jobs:
        console.print("no jobs match these filters")
        return
    out.print(table)


async def show_stats(console: Console, out: Console, url: str, token: str | None) -> None:
    """Print the admin stats: totals, failure rate, processing time, queues, and a row per type."""
    stats = (await _query(console, url, token, STATS, {}))["stats"]
    average = stats["averageProcessingTime"]
    summary = Table(box=box.SIMPLE_HEAD, show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("total jobs", str(stats["totalJobs"]))
    for status in STATUSES:
        summary.add_row(
            Text(status.lower(), style=STATUS_COLOURS[status]), str(stats["byStatus"][status.lower()])
        )
    summary.add_row("failure rate", f"{stats['failureRate']:.1f}%")
    summary.add_row("average processing time", "—" if average is None else f"{average:.3f}s")
    summary.add_row("queue depth", str(stats["queueDepth"]))
    summary.add_row("dead-letter depth", str(stats["deadLetterDepth"]))
    by_type = Table(box=box.SIMPLE_HEAD, title="by job type", title_justify="left")
    by_type.add_column("TYPE", no_wrap=True, min_width=max([4, *(len(r["type"]) for r in stats["byType"])]))
    for status in STATUSES:
        by_type.add_column(status, justify="right", style=STATUS_COLOURS[status], min_width=len(status))
    by_type.add_column("QUEUE", justify="right", min_width=5)
    by_type.add_column("DEAD LETTERS", justify="right", min_width=12)
    for row in stats["byType"]:
        counts = row["byStatus"]
        by_type.add_row(
            row["type"],
            *(str(counts[s.lower()]) for s in STATUSES),
            str(row["queueDepth"]),
            str(row["deadLetterDepth"]),
        )
    out.print(summary)
    out.print(by_type)
