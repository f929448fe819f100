"""``jobpulse flow submit FILE.json [--watch]``: submit a flow, and follow it as a live tree."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from cli.http import ClientError, JobpulseClient

__all__ = ["flow_app", "render_flow"]

flow_app = typer.Typer(help="Flows: jobs that run after other jobs, submitted and watched as one.")
console = Console(stderr=True, soft_wrap=True)

SUBMIT_FLOW = """
mutation SubmitFlow($input: SubmitFlowInput!) {
  submitFlow(input: $input) {
    __typename
    ... on Flow { id status }
    ... on UserError { code message field }
  }
}
"""

FLOW_UPDATED = """
subscription Watch($id: ID!) {
  flowUpdated(id: $id) {
    id name status progress
    jobs { key after job { id type status progress error } }
  }
}
"""

STYLE = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "PROCESSING": "cyan",
    "PENDING": "white",
    "WAITING": "dim",
    "RUNNING": "cyan",
}


def render_flow(flow: dict[str, Any]) -> Tree:
    """The flow as a tree: each job under the first job it runs after (roots at the top)."""
    title = Text.assemble(
        (f"flow {flow.get('name') or flow['id']} ", "bold"),
        (flow["status"], STYLE.get(flow["status"], "")),
        f"  {flow['progress']:.0f}%",
    )
    tree = Tree(title)
    nodes: dict[str, Tree] = {}
    pending = list(flow["jobs"])
    while pending:
        placed = False
        for entry in list(pending):
            parent = entry["after"][0] if entry["after"] else None
            if parent is not None and parent not in nodes:
                continue
            job = entry["job"]
            label = Text.assemble(
                (entry["key"], "bold"),
                f" {job['type']} ",
                (job["status"], STYLE.get(job["status"], "")),
                f" {job['progress']:.0f}%" if job["status"] == "PROCESSING" else "",
                (f" {job['error']}", "red") if job.get("error") else "",
                (f"  (after {', '.join(entry['after'][1:])} too)", "dim") if len(entry["after"]) > 1 else "",
            )
            nodes[entry["key"]] = (nodes[parent] if parent else tree).add(label)
            pending.remove(entry)
            placed = True
        if not placed:  # cannot happen for an accepted flow (no cycles); never loop on it
            break
    return tree


async def _submit(url: str, token: str | None, flow_input: dict[str, Any]) -> str:
    try:
        data = await JobpulseClient(url, token).execute(SUBMIT_FLOW, {"input": flow_input})
    except ClientError as exc:
        console.print(f"[red]submit failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    result = data["submitFlow"]
    if result["__typename"] == "UserError":
        where = f" ({result['field']})" if result.get("field") else ""
        console.print(f"[red]{result['code']}[/red]{where}: {result['message']}")
        raise typer.Exit(2)
    return str(result["id"])


async def _watch(url: str, token: str | None, flow_id: str) -> str:
    status = "RUNNING"
    with Live(Text("…"), console=console, auto_refresh=False) as live:
        try:
            async for data in JobpulseClient(url, token).subscribe(FLOW_UPDATED, {"id": flow_id}):
                flow = data["flowUpdated"]
                status = flow["status"]
                live.update(render_flow(flow), refresh=True)
        except ClientError as exc:
            console.print(f"[red]watch failed:[/red] {exc}")
            raise typer.Exit(2) from exc
    return status


@flow_app.command("submit")
def submit(
    file: Annotated[
        Path, typer.Argument(help="A SubmitFlowInput as JSON: {name, jobs: [{key, job, after}]}.")
    ],
    watch: Annotated[
        bool, typer.Option("--watch", help="Show the flow as a live tree until it ends.")
    ] = False,
    url: Annotated[str, typer.Option("--url", envvar="JOBPULSE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option("--token", envvar="JOBPULSE_TOKEN")] = None,
) -> None:
    """Submit a flow and print its id; with --watch, follow it and exit 0 only if it COMPLETED."""
    try:
        flow_input = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]cannot read {file}:[/red] {exc}")
        raise typer.Exit(2) from exc
    flow_id = asyncio.run(_submit(url, token, flow_input))
    print(flow_id)
    if watch:
        status = asyncio.run(_watch(url, token, flow_id))
        raise typer.Exit(0 if status == "COMPLETED" else 1)
