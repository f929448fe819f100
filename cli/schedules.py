"""``jobpulse schedules`` (a table) and ``jobpulse schedule add|pause|resume|run|delete``: client commands."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console(stderr=True, soft_wrap=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="JOBPULSE_URL", help="The jobpulse server to talk to.")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="JOBPULSE_TOKEN", help="Bearer token (admin or user).")
]
DEFAULT_URL = "http://127.0.0.1:8000"

SCHEDULE_FIELDS = (
    "id name owner cron timezone paused overlap catchUp nextRunAt lastRunAt lastJob { id status }"
)
LIST = f"""query($first: Int) {{ schedules(first: $first) {{
  totalCount edges {{ node {{ {SCHEDULE_FIELDS} }} }} }} }}"""
CREATE = f"""mutation($input: ScheduleInput!) {{ createSchedule(input: $input) {{
  __typename
  ... on Schedule {{ {SCHEDULE_FIELDS} upcoming description }}
  ... on UserError {{ code field message }}
}} }}"""
ACTIONS = {
    "pause": "pauseSchedule",
    "resume": "resumeSchedule",
    "delete": "deleteSchedule",
}
ACTION = """mutation($id: ID!) {{ {field}(id: $id) {{
  __typename ... on Schedule {{ id name paused nextRunAt }} ... on UserError {{ code field message }} }} }}"""
TRIGGER = """mutation($id: ID!) { triggerSchedule(id: $id) {
  __typename ... on Job { id status } ... on UserError { code field message } } }"""

schedule_app = typer.Typer(help="Create and manage cron schedules.", no_args_is_help=True)


async def _run(url: str, token: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    from cli.client import _query

    return await _query(console, url, token, query, variables)


def _refused(result: dict[str, Any]) -> None:
    if result["__typename"] == "UserError":
        field = f" ({result['field']})" if result.get("field") else ""
        console.print(f"[red]{result['code']}{field}:[/red] {result['message']}")
        raise typer.Exit(1)


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_schedules(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many.")] = 50,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List schedules (a user's own, an admin everyone's) with next and last run and the last job."""
    from cli.client import stdout_console

    data = asyncio.run(_run(url, token, LIST, {"first": limit}))["schedules"]
    nodes = [edge["node"] for edge in data["edges"]]
    if not nodes:
        console.print("no schedules")
        return
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(nodes)} of {data['totalCount']} schedules")
    for header in ("ID", "NAME", "CRON", "TIMEZONE", "STATE", "NEXT RUN (UTC)", "LAST RUN (UTC)", "LAST JOB"):
        table.add_column(header, no_wrap=True)
    for node in nodes:
        last = node["lastJob"]
        table.add_row(
            node["id"],
            node["name"],
            node["cron"],
            node["timezone"],
            "paused" if node["paused"] else "active",
            _when(node["nextRunAt"]),
            _when(node["lastRunAt"]),
            f"{last['status']} {last['id']}" if last else "—",
        )
    stdout_console().print(table)


@schedule_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique among your schedules.")],
    cron: Annotated[str, typer.Argument(help="Five fields, or six with seconds first, e.g. '0 3 * * *'.")],
    type: Annotated[str, typer.Argument(help="The job type each tick submits.")],
    payload: Annotated[str, typer.Argument(help="The payload as JSON.")] = "{}",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron.")] = "UTC",
    overlap: Annotated[str, typer.Option(help="SKIP: no new job while the last runs; ALLOW.")] = "SKIP",
    catch_up: Annotated[
        bool, typer.Option("--catch-up", help="After downtime, run the last missed tick.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create a schedule; print its id and its next five runs."""
    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError as exc:
        console.print(f"[red]PAYLOAD is not valid JSON:[/red] {exc}")
        raise typer.Exit(2) from exc
    value = {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "overlap": overlap.upper(),
        "catchUp": catch_up,
        "job": {"type": type, "payload": parsed},
    }
    result = asyncio.run(_run(url, token, CREATE, {"input": value}))["createSchedule"]
    _refused(result)
    print(result["id"])
    console.print(f"{result['description']}; next runs (UTC):")
    for tick in result["upcoming"]:
        console.print(f"  {_when(tick)}")


def _action(action: str, schedule_id: str, url: str, token: str | None) -> None:
    result = asyncio.run(_run(url, token, ACTION.format(field=ACTIONS[action]), {"id": schedule_id}))
    outcome = result[ACTIONS[action]]
    _refused(outcome)
    console.print(
        f"schedule {outcome['name']} {action}d"
        if action != "resume"
        else f"schedule {outcome['name']} resumed"
    )


@schedule_app.command("pause")
def pause(schedule_id: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Stop a schedule's ticks until resumed."""
    _action("pause", schedule_id, url, token)


@schedule_app.command("resume")
def resume(schedule_id: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Fire again from the next tick after now."""
    _action("resume", schedule_id, url, token)


@schedule_app.command("delete")
def delete(schedule_id: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Delete a schedule (its jobs stay)."""
    _action("delete", schedule_id, url, token)


@schedule_app.command("run")
def run(schedule_id: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Submit the schedule's job now, outside the cron; print the job id."""
    result = asyncio.run(_run(url, token, TRIGGER, {"id": schedule_id}))["triggerSchedule"]
    _refused(result)
    print(result["id"])


def register(app: typer.Typer) -> None:
    """Add ``schedules`` and ``schedule …`` to the ``jobpulse`` command."""
    app.command("schedules")(list_schedules)
    app.add_typer(schedule_app, name="schedule")
