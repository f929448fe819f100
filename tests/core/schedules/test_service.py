"""``ScheduleService`` on both backends: one job per tick, pause, overlap, catch-up, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import BackendUnavailableError, UnknownJobTypeError, UserFacingError, ValidationError
from core.models import JobStatus, Principal
from core.ports import JobFilter
from core.schedules import OverlapPolicy, ScheduleInput, ScheduleService, ScheduleStore
from core.schedules import service as service_module
from core.schedules.service import job_request, tick_key
from tests.support.schedules import Clock, schedules_on
from tests.support.services import BACKENDS

ALICE = Principal("alice")
EVERY_SECOND = "* * * * * *"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
async def schedules(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[ScheduleService]:
    async with schedules_on(request, tmp_path, clock) as service:
        yield service


def every_second(name: str = "ping", **changes: object) -> ScheduleInput:
    value = ScheduleInput(name=name, cron=EVERY_SECOND, job={"type": "noop", "payload": {"note": "tick"}})
    return replace(value, **changes)  # type: ignore[arg-type]


async def jobs_of(schedules: ScheduleService, schedule_id: str) -> list[str]:
    page = await schedules.jobs.list(ALICE, JobFilter(schedule_id=schedule_id), 500, None)
    return sorted(job.idempotency_key or "" for job in page.jobs)


async def test_create_sets_the_first_tick_after_now(schedules: ScheduleService, clock: Clock) -> None:
    """A new schedule's nextRunAt is the cron's first tick after the moment it was created."""
    schedule = await schedules.create(ALICE, every_second())
    assert schedule.next_run_at == datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC)
    assert await schedules.get(ALICE, schedule.id) == schedule


async def test_each_due_tick_submits_one_job(schedules: ScheduleService, clock: Clock) -> None:
    """Three rounds a second apart make three jobs, each marked with the schedule and its tick."""
    schedule = await schedules.create(ALICE, every_second(overlap=OverlapPolicy.ALLOW))
    for _ in range(3):
        clock.advance(1)
        await schedules.run_due()
    keys = await jobs_of(schedules, schedule.id)
    assert len(keys) == 3
    stored = await schedules.get(ALICE, schedule.id)
    assert stored is not None and stored.last_job_id is not None
    assert stored.next_run_at == datetime(2030, 1, 1, 12, 0, 4, tzinfo=UTC)


async def test_a_round_bigger_than_a_chunk_takes_every_due_tick_once(
    schedules: ScheduleService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round is taken in chunks (the loop given back between them): every due schedule still
    fires once, in one round, and moves to its next tick."""
    monkeypatch.setattr(service_module, "ROUND_CHUNK", 3)
    made = [
        await schedules.create(ALICE, every_second(f"s{i}", overlap=OverlapPolicy.ALLOW)) for i in range(7)
    ]
    clock.advance(1)
    outcomes = await schedules.run_due()
    assert sorted(o.schedule.name for o in outcomes) == [f"s{i}" for i in range(7)]
    assert {o.outcome for o in outcomes} == {"fired"}
    for schedule in made:
        assert len(await jobs_of(schedules, schedule.id)) == 1
    assert await schedules.run_due() == []


async def test_a_ticks_job_carries_the_templates_concurrency_key_and_expiry(
    schedules: ScheduleService, clock: Clock
) -> None:
    """concurrencyKey and expiresInSeconds in the job template reach every tick's job."""
    template = {"type": "noop", "payload": {}, "concurrencyKey": "tenant-3", "expiresInSeconds": 90}
    schedule = await schedules.create(ALICE, every_second(job=template))
    clock.advance(1)
    [outcome] = await schedules.run_due()
    assert outcome.job is not None and outcome.job.schedule_id == schedule.id
    assert (outcome.job.concurrency_key, outcome.job.expires_in_seconds) == ("tenant-3", 90)


async def test_a_template_with_dependencies_is_refused(schedules: ScheduleService) -> None:
    """A schedule's job cannot wait for other jobs (the same ones at every tick): VALIDATION on
    job.dependsOn, nothing stored."""
    template = {"type": "noop", "payload": {}, "dependsOn": ["01a23d3b-0000-7000-8000-000000000000"]}
    with pytest.raises(ValidationError) as refused:
        await schedules.create(ALICE, every_second(job=template))
    assert refused.value.field == "job.dependsOn"
    assert await schedules.count(ALICE) == 0


async def test_concurrent_takers_make_one_job_per_tick(schedules: ScheduleService, clock: Clock) -> None:
    """Five takers of the same due tick at once: one job, and the tick moves once."""
    schedule = await schedules.create(ALICE, every_second())
    clock.advance(1)
    await asyncio.gather(*(schedules.take(schedule, clock()) for _ in range(5)))
    assert len(await jobs_of(schedules, schedule.id)) == 1


async def test_a_crash_after_the_submit_repeats_it_harmlessly(
    schedules: ScheduleService, clock: Clock
) -> None:
    """A tick whose job was submitted but whose nextRunAt never moved makes no second job."""
    schedule = await schedules.create(ALICE, every_second())
    clock.advance(1)
    assert schedule.next_run_at is not None
    first = await schedules.jobs.submit(
        ALICE, job_request(schedule.job, schedule.id, tick_key(schedule.id, schedule.next_run_at))
    )
    await schedules.run_due()
    assert len(await jobs_of(schedules, schedule.id)) == 1
    stored = await schedules.get(ALICE, schedule.id)
    assert stored is not None and stored.last_job_id == first.id


async def test_a_paused_schedule_fires_nothing(schedules: ScheduleService, clock: Clock) -> None:
    """While paused no tick makes a job; resumed, it fires from the next tick after now."""
    schedule = await schedules.create(ALICE, every_second())
    await schedules.pause(ALICE, schedule.id)
    clock.advance(5)
    assert await schedules.run_due() == []
    resumed = await schedules.resume(ALICE, schedule.id)
    assert resumed.next_run_at == datetime(2030, 1, 1, 12, 0, 6, tzinfo=UTC)
    clock.advance(1)
    await schedules.run_due()
    assert len(await jobs_of(schedules, schedule.id)) == 1


async def test_skip_overlap_waits_for_the_last_job(schedules: ScheduleService, clock: Clock) -> None:
    """With SKIP, a tick while the last job is unfinished is skipped; ALLOW fires it anyway."""
    skip = await schedules.create(ALICE, every_second("skip"))
    allow = await schedules.create(ALICE, every_second("allow", overlap=OverlapPolicy.ALLOW))
    for _ in range(2):
        clock.advance(1)
        outcomes = await schedules.run_due()
    assert {o.schedule.name: o.outcome for o in outcomes} == {"skip": "skipped", "allow": "fired"}
    assert len(await jobs_of(schedules, skip.id)) == 1
    assert len(await jobs_of(schedules, allow.id)) == 2


async def test_skip_overlap_fires_once_the_last_job_ended(schedules: ScheduleService, clock: Clock) -> None:
    """With SKIP, the tick after the last job was cancelled fires again."""
    await schedules.create(ALICE, every_second())
    clock.advance(1)
    [outcome] = await schedules.run_due()
    assert outcome.job is not None
    await schedules.jobs.cancel(ALICE, outcome.job.id)
    clock.advance(1)
    [second] = await schedules.run_due()
    assert second.outcome == "fired"


async def test_missed_ticks_are_skipped_without_catch_up(schedules: ScheduleService, clock: Clock) -> None:
    """After ten seconds with no taker, catchUp false makes no job for the missed ticks."""
    schedule = await schedules.create(ALICE, every_second(overlap=OverlapPolicy.ALLOW))
    clock.advance(10.5)
    outcomes = await schedules.run_due()
    # The ticks up to now - grace (1 s) were missed; the one at 10 s is on time and fires.
    assert [o.outcome for o in outcomes] == ["missed", "fired"]
    keys = await jobs_of(schedules, schedule.id)
    assert keys == [tick_key(schedule.id, datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC))]


async def test_missed_ticks_run_once_with_catch_up(schedules: ScheduleService, clock: Clock) -> None:
    """After ten seconds with no taker, catchUp true makes one job for all the missed ticks."""
    schedule = await schedules.create(ALICE, every_second(overlap=OverlapPolicy.ALLOW, catch_up=True))
    clock.advance(10.5)
    outcomes = await schedules.run_due()
    assert [o.outcome for o in outcomes] == ["fired", "fired"]  # the missed ones, then the on-time one
    assert len(await jobs_of(schedules, schedule.id)) == 2
    clock.advance(0.2)
    assert await schedules.run_due() == []


async def test_trigger_submits_a_job_outside_the_cron(schedules: ScheduleService, clock: Clock) -> None:
    """triggerSchedule makes one job now, marked with the schedule, and leaves the next tick alone."""
    schedule = await schedules.create(ALICE, every_second())
    job = await schedules.trigger(ALICE, schedule.id)
    assert job.schedule_id == schedule.id and job.status is JobStatus.PENDING
    stored = await schedules.get(ALICE, schedule.id)
    assert stored is not None and stored.last_job_id == job.id and stored.next_run_at == schedule.next_run_at


async def test_schedules_are_owner_scoped(schedules: ScheduleService) -> None:
    """Another user neither sees nor changes a schedule; an admin sees it."""
    schedule = await schedules.create(ALICE, every_second())
    bob = Principal("bob")
    assert await schedules.get(bob, schedule.id) is None
    assert (await schedules.page(bob, 50, None)).schedules == []
    with pytest.raises(UserFacingError):
        await schedules.pause(bob, schedule.id)
    assert await schedules.get(Principal("root", "admin"), schedule.id) == schedule


async def test_update_recomputes_the_next_tick(schedules: ScheduleService, clock: Clock) -> None:
    """Changing the cron moves nextRunAt to the new expression's next tick."""
    schedule = await schedules.create(ALICE, every_second())
    updated = await schedules.update(ALICE, schedule.id, every_second(cron="0 13 * * *"))
    assert updated.next_run_at == datetime(2030, 1, 1, 13, 0, tzinfo=UTC)
    assert updated.version == schedule.version + 1


async def test_delete_removes_the_schedule(schedules: ScheduleService, clock: Clock) -> None:
    """A deleted schedule is gone and fires no more."""
    schedule = await schedules.create(ALICE, every_second())
    await schedules.delete(ALICE, schedule.id)
    clock.advance(2)
    assert await schedules.get(ALICE, schedule.id) is None
    assert await schedules.run_due() == []


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"cron": "61 * * * *"}, "cron", ValidationError),
        ({"cron": "* * *"}, "cron", ValidationError),
        ({"timezone": "Mars/Olympus"}, "timezone", ValidationError),
        ({"job": {"type": "nope", "payload": {}}}, "job.type", UnknownJobTypeError),
        ({"job": {"type": "sleep", "payload": {"seconds": -1}}}, "job.payload.seconds", ValidationError),
        ({"name": "  "}, "name", ValidationError),
    ],
)
async def test_bad_input_is_refused_with_its_field(
    schedules: ScheduleService, change: dict[str, object], field: str, error: type[UserFacingError]
) -> None:
    """Each kind of bad input is a UserError naming its field, and nothing is stored."""
    with pytest.raises(error) as caught:
        await schedules.create(ALICE, every_second(**change))
    assert caught.value.field == field
    assert await schedules.count(ALICE) == 0


async def test_a_reused_name_is_refused(schedules: ScheduleService) -> None:
    """A second schedule with the same name is VALIDATION on name; the first stays alone."""
    await schedules.create(ALICE, every_second())
    with pytest.raises(ValidationError) as caught:
        await schedules.create(ALICE, every_second())
    assert caught.value.field == "name"
    assert await schedules.count(ALICE) == 1


class _Outage:
    """A schedule store that does not answer while ``down`` (as a store that is down would)."""

    def __init__(self, store: ScheduleStore) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.store, name)
        if not callable(attribute):
            return attribute

        async def call(*args: object, **kwargs: object) -> object:
            if self.down:
                raise BackendUnavailableError("the store is down")
            return await attribute(*args, **kwargs)

        return call


@pytest.mark.parametrize("catch_up", [False, True])
async def test_a_store_outage_follows_catch_up_without_duplicates(
    schedules: ScheduleService, clock: Clock, catch_up: bool
) -> None:
    """Ten seconds of a store that does not answer: its ticks make no job (catchUp false) or one
    (true), and the rounds after it make no second job for any tick."""
    schedule = await schedules.create(ALICE, every_second(overlap=OverlapPolicy.ALLOW, catch_up=catch_up))
    outage = _Outage(schedules.store)
    schedules.store = outage  # type: ignore[assignment]
    clock.advance(1)
    await schedules.run_due()  # the tick before the outage
    outage.down = True
    for _ in range(10):
        clock.advance(1)
        with pytest.raises(BackendUnavailableError):
            await schedules.run_due()
    outage.down = False
    clock.advance(0.5)
    await schedules.run_due()
    for _ in range(2):
        clock.advance(1)
        await schedules.run_due()
    keys = await jobs_of(schedules, schedule.id)
    assert len(keys) == len(set(keys))
    start = datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC)
    window = [tick_key(schedule.id, start.replace(second=s)) for s in range(2, 10)]  # older than the grace
    assert len([k for k in keys if k in window]) == (1 if catch_up else 0)
    # the tick before the outage, the last one within the grace, and the two after it
    assert len(keys) == 4 + (1 if catch_up else 0)


async def test_concurrent_rounds_make_one_job_per_tick(schedules: ScheduleService, clock: Clock) -> None:
    """Three schedulers' rounds over the same due ticks at once: one job per tick, each tick moved once."""
    made = [
        await schedules.create(ALICE, every_second(f"s{i}", overlap=OverlapPolicy.ALLOW)) for i in range(3)
    ]
    others = [ScheduleService(schedules.store, schedules.jobs) for _ in range(2)]
    for _ in range(2):
        clock.advance(1)
        await asyncio.gather(schedules.run_due(), *(other.run_due() for other in others))
    for schedule in made:
        assert len(await jobs_of(schedules, schedule.id)) == 2
        stored = await schedules.get(ALICE, schedule.id)
        assert stored is not None and stored.next_run_at == datetime(2030, 1, 1, 12, 0, 3, tzinfo=UTC)
