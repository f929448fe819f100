"""The ``ScheduleStore`` contract, run against every store (SQLite and MongoDB)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from core.errors import ValidationError
from core.models import new_job_id, utcnow
from core.schedules.model import OverlapPolicy, Schedule, ScheduleStore

BASE = utcnow().replace(microsecond=123456)


def make_schedule(name: str = "nightly", owner: str = "alice", *, at_offset: float = 0.0) -> Schedule:
    return Schedule(
        id=new_job_id(),
        name=name,
        owner=owner,
        cron="0 3 * * *",
        timezone="Europe/Berlin",
        job={"type": "noop", "payload": {"$odd key": [1, None]}},
        overlap=OverlapPolicy.ALLOW,
        catch_up=True,
        next_run_at=BASE + timedelta(seconds=at_offset),
        created_at=BASE + timedelta(seconds=at_offset),
        updated_at=BASE,
    )


async def test_insert_then_get_returns_every_field(schedule_store: ScheduleStore) -> None:
    """A stored schedule reads back equal, job template and times included."""
    schedule = make_schedule()
    assert await schedule_store.insert(schedule)
    assert await schedule_store.get(schedule.id) == schedule


async def test_insert_refuses_a_name_its_owner_uses(schedule_store: ScheduleStore) -> None:
    """A second schedule of the same owner and name is not stored; another owner's is."""
    assert await schedule_store.insert(make_schedule())
    assert not await schedule_store.insert(make_schedule())
    assert await schedule_store.insert(make_schedule(owner="bob"))
    assert await schedule_store.count(None) == 2


async def test_update_is_conditional_on_the_version(schedule_store: ScheduleStore) -> None:
    """Of two writes from the same version, only the first lands."""
    schedule = make_schedule()
    await schedule_store.insert(schedule)
    first = replace(schedule, paused=True, version=2)
    second = replace(schedule, cron="* * * * *", version=2)
    assert await schedule_store.update(first, 1) == first
    assert await schedule_store.update(second, 1) is None
    assert await schedule_store.get(schedule.id) == first


async def test_concurrent_updates_one_wins(schedule_store: ScheduleStore) -> None:
    """Ten concurrent writes from one version: exactly one is written."""
    schedule = make_schedule()
    await schedule_store.insert(schedule)
    writes = [schedule_store.update(replace(schedule, name=f"n{i}", version=2), 1) for i in range(10)]
    results = await asyncio.gather(*writes)
    assert sum(r is not None for r in results) == 1


async def test_update_to_a_taken_name_is_a_validation_error(schedule_store: ScheduleStore) -> None:
    """Renaming onto another schedule's name raises ``ValidationError`` on ``name``."""
    a, b = make_schedule("a"), make_schedule("b")
    await schedule_store.insert(a)
    await schedule_store.insert(b)
    with pytest.raises(ValidationError) as caught:
        await schedule_store.update(replace(b, name="a", version=2), 1)
    assert caught.value.field == "name"


async def test_due_returns_unpaused_schedules_at_or_before_a_time(schedule_store: ScheduleStore) -> None:
    """``due`` lists unpaused schedules whose next tick has come, earliest first."""
    late, early, future = (
        make_schedule("late", at_offset=-1),
        make_schedule("early", at_offset=-5),
        make_schedule("future", at_offset=60),
    )
    paused = replace(make_schedule("paused", at_offset=-10), paused=True)
    for s in (late, early, future, paused):
        await schedule_store.insert(s)
    assert [s.name for s in await schedule_store.due(BASE, 10)] == ["early", "late"]
    assert await schedule_store.next_due() == early.next_run_at


async def test_list_pages_oldest_first_and_scoped_by_owner(schedule_store: ScheduleStore) -> None:
    """Listing pages by (createdAt, id) and narrows to one owner when asked."""
    made = [make_schedule(f"s{i}", at_offset=i) for i in range(3)]
    for s in [*made, make_schedule("other", owner="bob")]:
        await schedule_store.insert(s)
    first = await schedule_store.list("alice", 2, None)
    rest = await schedule_store.list("alice", 2, (first[-1].created_at, first[-1].id))
    assert [s.name for s in first + rest] == ["s0", "s1", "s2"]
    assert await schedule_store.count("alice") == 3


async def test_delete_removes_it(schedule_store: ScheduleStore) -> None:
    """A deleted schedule is gone and its name free again."""
    schedule = make_schedule()
    await schedule_store.insert(schedule)
    assert await schedule_store.delete(schedule.id)
    assert await schedule_store.get(schedule.id) is None
    assert not await schedule_store.delete(schedule.id)
    assert await schedule_store.insert(make_schedule())


async def test_get_many_returns_the_ones_that_exist(schedule_store: ScheduleStore) -> None:
    """``get_many`` maps each stored id to its schedule and leaves unknown ids out."""
    a = make_schedule("a")
    await schedule_store.insert(a)
    assert await schedule_store.get_many([a.id, "missing"]) == {a.id: a}
