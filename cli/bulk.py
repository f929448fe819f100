"""``jobpulse cancel`` and ``jobpulse retry``: every job a filter matches, at once (client commands)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.http import ClientError, JobpulseClient

__all__ = ["register"]

console = Console(stderr=True, soft_wrap=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="JOBPULSE_URL", help="The jobpulse server to talk to.")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="JOBPULSE_TOKEN", help="Bearer token (admin or user).")
]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", "-s", help="Only jobs in this status (repeat, or comma-separate, for several)."),
]
TypeOption = Annotated[str | None, typer.Option("--type", "-t", help="Only jobs of this type.")]
OwnerOption = Annotated[str | None, typer.Option("--owner", help="Only this owner's jobs (admin token).")]
DEFAULT_URL = "http://127.0.0.1:8000"
#: a bulk action on many jobs answers when it is done: wait for it this long
BULK_WAIT_SECONDS = 600

STATUSES = ("PENDING", "WAITING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
MUTATIONS = {"cancel": "cancelJobs", "retry": "retryJobs"}
DONE = {"cancel": "cancelled", "retry": "retried"}


def _filter(statuses: list[str] | None, type: str | None, owner: str | None) -> dict[str, Any]:
    """The ``JobFilter`` of the options; exit 2 on a status that is none."""
    wanted = [part.strip().upper() for value in statuses or [] for part in value.split(",") if part.strip()]
    unknown = sorted(set(wanted) - set(STATUSES))
    if unknown:
        console.print(f"[red]unknown status {', '.join(unknown)}[/red] (one of {', '.join(STATUSES)})")
        raise typer.Exit(2)
    job_filter: dict[str, Any] = {}
    if wanted:
        job_filter["status"] = list(dict.fromkeys(wanted))
    if type:
        job_filter["type"] = type
    if owner:
        job_filter["owner"] = owner
    return job_filter


async def _act(action: str, url: str, token: str | None, job_filter: dict[str, Any]) -> int:
    field = MUTATIONS[action]
    query = f"mutation($filter: JobFilter!) {{ {field}(filter: $filter) }}"
    try:
        data = await JobpulseClient(url, token).execute(
            query, {"filter": job_filter}, wait_seconds=BULK_WAIT_SECONDS
        )
    except ClientError as exc:
        from cli.client import fail

        fail(console, action, exc)
    count: int = data[field]
    return count


def _run(action: str, url: str, token: str | None, job_filter: dict[str, Any]) -> None:
    count = asyncio.run(_act(action, url, token, job_filter))
    print(count)
    console.print(f"{count} job{'s' if count != 1 else ''} {DONE[action]}")


def cancel(
    status: StatusOption = None,
    type: TypeOption = None,
    owner: OwnerOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Cancel every job the options match (yours; an admin's: anyone's) and print how many."""
    _run("cancel", url, token, _filter(status, type, owner))


def retry(
    status: StatusOption = None,
    type: TypeOption = None,
    owner: OwnerOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Retry every FAILED or CANCELLED job the options match and print how many went back to PENDING."""
    _run("retry", url, token, _filter(status, type, owner))


def register(app: typer.Typer) -> None:
    """Add ``cancel`` and ``retry`` to the ``jobpulse`` command."""
    app.command("cancel")(cancel)
    app.command("retry")(retry)
