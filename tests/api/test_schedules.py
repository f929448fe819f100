"""The schedule fields over HTTP, on both backends, with the real schedule loop running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.api.helpers import (
    ADMIN,
    ALICE,
    API_KEYS,
    BOB,
    JWT_SECRET,
    Server,
    api_settings,
    run_server,
    wait_until,
)
from tests.support.services import BACKENDS
from workers.scheduler import run_scheduler

SCHEDULE = """id name cron timezone job overlap catchUp paused nextRunAt lastRunAt description upcoming
    lastJob { id scheduleId status }"""
CREATE = f"""mutation($input: ScheduleInput!) {{ createSchedule(input: $input) {{
    __typename ... on Schedule {{ {SCHEDULE} }} ... on UserError {{ code field message }} }} }}"""
SCHEDULE_JOBS = (
    "query($id: ID!) { jobs(filter: {scheduleId: $id}, first: 100) { edges { node { id scheduleId } } } }"
)


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server running the schedule loop, on each kind of backends."""
    if request.param == "embedded":
        settings = api_settings(tmp_path / "data")
    else:
        make: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
        settings = make(api_keys=API_KEYS, jwt_secret=JWT_SECRET, shutdown_grace_seconds=1)
    async with run_server(settings, scheduler=run_scheduler) as running:
        yield running


def schedule_input(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "name": "ping",
        "cron": "* * * * * *",
        "job": {"type": "noop", "payload": {"note": "tick"}, "idempotencyKey": "ignored"},
        "overlap": "ALLOW",
    }
    value.update(changes)
    return value


async def create(server: Server, token: str = ALICE, **changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await server.data(token, CREATE, input=schedule_input(**changes)))[
        "createSchedule"
    ]
    return result


async def test_create_returns_the_schedule_with_a_preview(server: Server) -> None:
    """createSchedule answers the stored schedule, its cron in words and its next five ticks."""
    schedule = await create(server, cron="0 3 * * *", timezone="Europe/Berlin")
    assert schedule["__typename"] == "Schedule"
    assert schedule["job"] == {
        "type": "noop",
        "payload": {"note": "tick"},
        "priority": 0,
        "delaySeconds": 0,
        "onDependencyFailure": "FAIL",
    }
    assert schedule["description"] == "At 03:00 every day"
    assert len(schedule["upcoming"]) == 5 and schedule["upcoming"][0] == schedule["nextRunAt"]


async def test_ticks_submit_jobs_marked_with_the_schedule(server: Server) -> None:
    """The running loop submits jobs for an every-second schedule, each with its scheduleId."""
    schedule = await create(server)

    async def jobs() -> list[dict[str, Any]]:
        data = await server.data(ALICE, SCHEDULE_JOBS, id=schedule["id"])
        return [edge["node"] for edge in data["jobs"]["edges"]]

    async def two_jobs() -> bool:
        return len(await jobs()) >= 2

    await wait_until(two_jobs, "two ticks' jobs")
    assert {job["scheduleId"] for job in await jobs()} == {schedule["id"]}
    data = await server.data(
        ALICE, f"query($id: ID!) {{ schedule(id: $id) {{ {SCHEDULE} }} }}", id=schedule["id"]
    )
    assert data["schedule"]["lastJob"]["scheduleId"] == schedule["id"]


async def test_pause_resume_and_trigger(server: Server) -> None:
    """pauseSchedule and resumeSchedule flip the flag; triggerSchedule submits one job at once."""
    schedule = await create(server, cron="0 3 1 1 *")
    sid = schedule["id"]
    paused = await server.data(
        ALICE, "mutation($id: ID!) { pauseSchedule(id: $id) { ... on Schedule { paused } } }", id=sid
    )
    assert paused["pauseSchedule"] == {"paused": True}
    resumed = await server.data(
        ALICE, "mutation($id: ID!) { resumeSchedule(id: $id) { ... on Schedule { paused } } }", id=sid
    )
    assert resumed["resumeSchedule"] == {"paused": False}
    triggered = await server.data(
        ALICE, "mutation($id: ID!) { triggerSchedule(id: $id) { ... on Job { scheduleId status } } }", id=sid
    )
    assert triggered["triggerSchedule"] == {"scheduleId": sid, "status": "PENDING"}


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"cron": "not a cron"}, "VALIDATION", "cron"),
        ({"timezone": "Nowhere/Land"}, "VALIDATION", "timezone"),
        ({"job": {"type": "nope", "payload": {}}}, "UNKNOWN_JOB_TYPE", "job.type"),
    ],
)
async def test_bad_input_is_a_user_error_and_stores_nothing(
    server: Server, changes: dict[str, Any], code: str, field: str
) -> None:
    """A refused schedule comes back as UserError with its field, and the listing stays empty."""
    result = await create(server, **changes)
    assert (result["__typename"], result["code"], result["field"]) == ("UserError", code, field)
    data = await server.data(ALICE, "{ schedules { totalCount } }")
    assert data["schedules"]["totalCount"] == 0


async def test_a_reused_name_is_validation_on_name(server: Server) -> None:
    """A second schedule of the same name is VALIDATION on name."""
    await create(server, cron="0 3 * * *")
    result = await create(server, cron="0 4 * * *")
    assert (result["code"], result["field"]) == ("VALIDATION", "name")


async def test_listing_is_owner_scoped(server: Server) -> None:
    """A user lists its own schedules, an admin everyone's; another user's is null by id."""
    mine = await create(server, cron="0 3 * * *")
    await create(server, BOB, cron="0 3 * * *")
    alice = await server.data(ALICE, "{ schedules { totalCount edges { node { owner } } } }")
    admin = await server.data(ADMIN, "{ schedules { totalCount } }")
    bobs_view = await server.data(BOB, "query($id: ID!) { schedule(id: $id) { id } }", id=mine["id"])
    assert alice["schedules"]["totalCount"] == 1 and admin["schedules"]["totalCount"] == 2
    assert bobs_view["schedule"] is None


async def test_cron_preview_describes_an_expression(server: Server) -> None:
    """cronPreview answers the words and next five ticks, or VALIDATION on cron."""
    ok = await server.data(
        ALICE, '{ cronPreview(cron: "*/15 * * * *") { ... on CronPreview { description nextRuns } } }'
    )
    bad = await server.data(ALICE, '{ cronPreview(cron: "99 * * * *") { ... on UserError { field } } }')
    assert len(ok["cronPreview"]["nextRuns"]) == 5 and ok["cronPreview"]["description"]
    assert bad["cronPreview"] == {"field": "cron"}


async def test_metrics_count_fired_ticks(server: Server) -> None:
    """/metrics counts the ticks this process fired and how late it took them."""
    await create(server)

    async def counted() -> bool:
        async with server.http() as client:
            text = (await client.get("/metrics")).text
        return (
            'jobpulse_schedule_ticks_total{outcome="fired"}' in text
            and "jobpulse_schedule_lateness_seconds_count" in text
        )

    await wait_until(counted, "fired ticks in /metrics")
