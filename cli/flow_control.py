"""``jobpulse pause TYPE`` and ``jobpulse resume TYPE``: client commands for a job type's flow control."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["register"]

console = Console(stderr=True, soft_wrap=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="JOBPULSE_URL", help="The jobpulse server to talk to.")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="JOBPULSE_TOKEN", help="Admin bearer token.")
]
DEFAULT_URL = "http://127.0.0.1:8000"

ACTION = """mutation($type: String!) {{ {field}(type: $type) {{
  __typename ... on JobType {{ name paused concurrency }} ... on UserError {{ code field message }} }} }}"""


def _act(field: str, type: str, url: str, token: str | None) -> dict[str, Any]:
    from cli.client import _query

    data = asyncio.run(_query(console, url, token, ACTION.format(field=field), {"type": type}))
    result: dict[str, Any] = data[field]
    if result["__typename"] == "UserError":
        where = f" ({result['field']})" if result.get("field") else ""
        console.print(f"[red]{result['code']}{where}:[/red] {result['message']}")
        raise typer.Exit(1)
    return result


def pause(type: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Pause a job type (admin): no new starts anywhere; running jobs finish; submits still accepted."""
    _act("pauseJobType", type, url, token)
    print(f"{type} paused")


def resume(type: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Resume a paused job type (admin): its waiting jobs start again."""
    _act("resumeJobType", type, url, token)
    print(f"{type} resumed")


def register(app: typer.Typer) -> None:
    """Add ``pause`` and ``resume`` to the ``jobpulse`` command."""
    app.command("pause")(pause)
    app.command("resume")(resume)
