"""What the client commands do: submit a job, and watch one live with a rich progress bar."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from api.client import ClientError, JobpulseClient

__all__ = ["submit_job", "watch_job"]

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
subscription Watch($jobId: ID!) {
  jobEvents(jobId: $jobId) {
    cursor kind message
    job { id type status progress progressMessage attempts maxAttempts error result }
  }
}
"""

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
STATUS_STYLE = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow"}


async def submit_job(console: Console, url: str, token: str | None, job_input: dict[str, Any]) -> str:
    """Submit one job; exit with a clear message if the server refuses it."""
    client = JobpulseClient(url, token)
    try:
        data = await client.execute(SUBMIT, {"input": job_input})
    except ClientError as exc:
        console.print(f"[red]submit failed:[/red] {exc}")
        raise typer.Exit(2) from exc
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
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=100, status=status)
        try:
            async for data in client.subscribe(EVENTS, {"jobId": job_id}):
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
            console.print(f"[red]watch failed:[/red] {exc}")
            raise typer.Exit(2) from exc
    style = STATUS_STYLE.get(status, "white")
    console.print(f"job {job_id} [{style}]{status}[/{style}]")
    if status == "COMPLETED":
        console.print_json(data=job.get("result"))
    elif job.get("error"):
        console.print(f"[red]error:[/red] {job['error']}")
    return status
