"""The ``JobStore`` contract, run against every store (SQLite and MongoDB)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from core.cursors import EventCursor, JobCursor, to_micros
from core.models import Job, JobEvent, JobEventKind, JobStatus, LogLevel, new_job_id, utcnow
from core.ports import JobFilter, JobStore

BASE = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=utcnow().tzinfo)
LONG_AGO = BASE - timedelta(days=365)


def make_job(
    *,
    at: datetime = BASE,
    owner: str = "alice",
    type: str = "noop",
    key: str | None = None,
    job_id: str | None = None,
) -> Job:
    return Job(
        id=job_id or new_job_id(),
        type=type,
        owner=owner,
        payload={"n": 1, "nested": {"$odd key": [1, 2.5, None, "x"]}},
        idempotency_key=key,
        created_at=at,
        updated_at=at,
    )


def created(job: Job) -> JobEvent:
    return JobEvent.of(job, JobEventKind.CREATED, "submitted")


async def add(store: JobStore, job: Job) -> Job:
    stored, new = await store.insert(job, created(job), LONG_AGO)
    assert new
    return stored


def changed(job: Job, seconds: float = 1.0, **changes: object) -> Job:
    """``job`` one version later, written ``seconds`` after its last write."""
    at = job.updated_at + timedelta(seconds=seconds)
    return replace(job, version=job.version + 1, updated_at=at, **changes)  # type: ignore[arg-type]


async def write(
    store: JobStore, job: Job, kind: JobEventKind = JobEventKind.PROGRESS, **changes: object
) -> Job:
    new = changed(job, **changes)
    written = await store.update(new, job.version, JobEvent.of(new, kind))
    assert written is not None
    return written


# -- insert and read ---------------------------------------------------------------------------


async def test_ping_answers(store: JobStore) -> None:
    """A reachable store answers ``ping``."""
    await store.ping()


async def test_inserted_job_reads_back_equal(store: JobStore) -> None:
    """A stored job reads back field for field, payload included, not yet enqueued."""
    job = make_job(key="k1")
    stored, new = await store.insert(job, created(job), LONG_AGO)
    assert new and stored == job and stored.enqueued_at is None
    assert await store.get(job.id) == job


async def test_insert_stores_the_created_event(store: JobStore) -> None:
    """The CREATED event is stored with the job."""
    job = await add(store, make_job())
    events = await store.list_events(after=None, limit=10, job_id=job.id)
    assert events == [created(job)]


async def test_get_of_unknown_job_is_none(store: JobStore) -> None:
    """Reading a job that does not exist gives ``None``."""
    assert await store.get(new_job_id()) is None


async def test_get_many_returns_the_jobs_that_exist(store: JobStore) -> None:
    """``get_many`` maps each existing id to its job and leaves out unknown ids."""
    a, b = await add(store, make_job()), await add(store, make_job())
    found = await store.get_many([a.id, new_job_id(), b.id, a.id])
    assert found == {a.id: a, b.id: b}


# -- idempotency -------------------------------------------------------------------------------


async def test_same_owner_and_key_returns_the_first_job(store: JobStore) -> None:
    """A second submission with the same owner and key inside the window returns the first job."""
    first = await add(store, make_job(key="order-7"))
    again = make_job(key="order-7", at=BASE + timedelta(seconds=5))
    stored, new = await store.insert(again, created(again), LONG_AGO)
    assert not new and stored == first
    assert await store.get(again.id) is None


async def test_same_key_of_another_owner_makes_a_new_job(store: JobStore) -> None:
    """Idempotency keys are per owner."""
    await add(store, make_job(key="order-7"))
    other = make_job(key="order-7", owner="bob")
    stored, new = await store.insert(other, created(other), LONG_AGO)
    assert new and stored.id == other.id


async def test_key_older_than_the_window_makes_a_new_job(store: JobStore) -> None:
    """A key first used before ``idempotency_since`` no longer deduplicates."""
    old = await add(store, make_job(key="order-7"))
    later = make_job(key="order-7", at=BASE + timedelta(hours=25))
    stored, new = await store.insert(later, created(later), BASE + timedelta(hours=1))
    assert new and stored.id == later.id
    again = make_job(key="order-7", at=BASE + timedelta(hours=26))
    stored, new = await store.insert(again, created(again), BASE + timedelta(hours=2))
    assert not new and stored.id == later.id
    assert await store.get(old.id) == old


async def test_concurrent_same_key_inserts_make_one_job(store: JobStore) -> None:
    """Concurrent submissions with one owner and key create exactly one job, returned to all."""
    jobs = [make_job(key="race", at=BASE + timedelta(microseconds=i)) for i in range(4)]
    results = await asyncio.gather(*(store.insert(j, created(j), LONG_AGO) for j in jobs))
    assert len({stored.id for stored, _ in results}) == 1
    assert sum(new for _, new in results) == 1
    assert await store.count_jobs(JobFilter()) == 1


# -- bulk insert -------------------------------------------------------------------------------


async def test_insert_many_stores_every_job_and_event_in_order(store: JobStore) -> None:
    """``insert_many`` answers each item in order, and each job and its event read back equal."""
    jobs = [make_job(at=BASE + timedelta(microseconds=i), owner=f"u{i % 2}") for i in range(5)]
    jobs[3] = replace(jobs[3], run_at=BASE + timedelta(hours=1), priority=7)
    answers = await store.insert_many([(j, created(j)) for j in jobs], LONG_AGO)
    assert answers == [(j, True) for j in jobs]
    assert await store.get_many([j.id for j in jobs]) == {j.id: j for j in jobs}
    events = await store.list_events(after=None, limit=10)
    assert events == [created(j) for j in jobs]


async def test_insert_many_of_nothing_answers_nothing(store: JobStore) -> None:
    """An empty batch writes nothing."""
    assert await store.insert_many([], LONG_AGO) == []
    assert await store.count_jobs(JobFilter()) == 0


async def test_insert_many_answers_as_inserts_one_after_the_other(store: JobStore) -> None:
    """Keys held before the call, repeated within it, of another owner, or older than the window:
    each item gets what ``insert`` after the items before it would have answered."""
    held = await add(store, make_job(key="held"))
    stale = await add(store, make_job(key="stale", at=BASE - timedelta(hours=2)))
    batch = [
        make_job(key="held"),  # 0: the stored holder
        make_job(key="twice"),  # 1: new
        make_job(),  # 2: no key: new
        make_job(key="twice"),  # 3: item 1's job
        make_job(key="twice", owner="bob"),  # 4: another owner's key: new
        make_job(key="stale"),  # 5: the holder is older than the window: new
        make_job(key="stale"),  # 6: item 5's job
        make_job(key="held"),  # 7: the stored holder again
    ]
    answers = await store.insert_many([(j, created(j)) for j in batch], BASE - timedelta(hours=1))
    expected = [held, batch[1], batch[2], batch[1], batch[4], batch[5], batch[5], held]
    assert [stored for stored, _ in answers] == expected
    assert [new for _, new in answers] == [False, True, True, False, True, True, False, False]
    assert await store.count_jobs(JobFilter()) == 2 + 4
    assert await store.get(stale.id) == stale
    for job in (batch[0], batch[3], batch[6], batch[7]):
        assert await store.get(job.id) is None
        assert await store.list_events(after=None, limit=10, job_id=job.id) == []


async def test_concurrent_insert_many_with_shared_keys_make_one_job_per_key(store: JobStore) -> None:
    """Concurrent batches naming the same keys create exactly one job per key, returned to all."""
    keys = ["a", "b", "c"]
    batches = [
        [make_job(key=k, at=BASE + timedelta(microseconds=n)) for k in (keys if n % 2 else keys[::-1])]
        for n in range(4)
    ]
    results = await asyncio.gather(
        *(store.insert_many([(j, created(j)) for j in batch], LONG_AGO) for batch in batches)
    )
    holders: dict[str | None, set[str]] = {}
    for answers in results:
        for stored, _ in answers:
            holders.setdefault(stored.idempotency_key, set()).add(stored.id)
    assert {k: len(ids) for k, ids in holders.items()} == {"a": 1, "b": 1, "c": 1}
    assert sum(new for answers in results for _, new in answers) == 3
    assert await store.count_jobs(JobFilter()) == 3
    assert len(await store.list_events(after=None, limit=10)) == 3


async def test_insert_many_leaves_its_jobs_to_the_sweeper_until_marked(store: JobStore) -> None:
    """Jobs of a batch are unsent PENDING jobs (the sweeper's) until each is marked enqueued."""
    jobs = [make_job() for _ in range(3)]
    await store.insert_many([(j, created(j)) for j in jobs], LONG_AGO)
    await store.mark_enqueued(jobs[0].id, BASE)
    found = await store.find_unenqueued(
        updated_before=BASE + timedelta(seconds=1), run_before=BASE + timedelta(hours=1), limit=10
    )
    assert {j.id for j in found} == {jobs[1].id, jobs[2].id}


# -- conditional update ------------------------------------------------------------------------


async def test_update_at_expected_version_writes_job_and_event(store: JobStore) -> None:
    """An update on the current version is stored with its event."""
    job = await add(store, make_job())
    new = changed(job, status=JobStatus.PROCESSING, attempts=1, lease_owner="w1")
    event = JobEvent.of(new, JobEventKind.STARTED, "attempt 1")
    assert await store.update(new, job.version, event) == new
    assert await store.get(job.id) == new
    assert (await store.list_events(after=None, limit=10, job_id=job.id))[-1] == event


async def test_update_at_stale_version_writes_nothing(store: JobStore) -> None:
    """An update whose expected version is not the stored one returns ``None`` and changes nothing."""
    job = await add(store, make_job())
    current = await write(store, job)
    stale = changed(job, seconds=2, error="late")
    assert await store.update(stale, job.version, JobEvent.of(stale, JobEventKind.LOG)) is None
    assert await store.get(job.id) == current
    assert [e.version for e in await store.list_events(after=None, limit=10, job_id=job.id)] == [1, 2]


async def test_update_never_rewrites_the_payload(store: JobStore) -> None:
    """The payload stays as inserted whatever the update carries."""
    job = await add(store, make_job())
    await store.update(changed(job, payload=None), job.version, None)
    stored = await store.get(job.id)
    assert stored is not None and stored.payload == job.payload and stored.version == 2


async def test_two_concurrent_writers_exactly_one_wins(store: JobStore) -> None:
    """Of two writers racing on one version, exactly one succeeds."""
    job = await add(store, make_job())
    a, b = changed(job, lease_owner="a"), changed(job, lease_owner="b")
    results = await asyncio.gather(
        store.update(a, 1, JobEvent.of(a, JobEventKind.LOG)), store.update(b, 1, None)
    )
    assert sorted(r is None for r in results) == [False, True]
    stored = await store.get(job.id)
    assert stored is not None and stored.version == 2 and stored in (a, b)


async def test_racing_writers_leave_consecutive_versions(store: JobStore) -> None:
    """Writers that re-read and retry on conflict leave versions 1..n with one event each."""
    job = await add(store, make_job())

    async def bump(times: int) -> None:
        done = 0
        while done < times:
            current = await store.get(job.id)
            assert current is not None
            new = changed(current, seconds=0.001, progress=current.progress + 1)
            if await store.update(new, current.version, JobEvent.of(new, JobEventKind.PROGRESS)) is not None:
                done += 1

    await asyncio.gather(bump(4), bump(4), bump(4))
    stored = await store.get(job.id)
    assert stored is not None and stored.version == 13 and stored.progress == 12
    events = await store.list_events(after=None, limit=100, job_id=job.id)
    assert [e.version for e in events] == list(range(1, 14))


# -- listing -----------------------------------------------------------------------------------


async def test_list_jobs_is_newest_first_then_by_id(store: JobStore) -> None:
    """Jobs list by creation time descending; ties by id descending."""
    tie = [await add(store, make_job(at=BASE)) for _ in range(3)]
    newer = await add(store, make_job(at=BASE + timedelta(seconds=1)))
    older = await add(store, make_job(at=BASE - timedelta(seconds=1)))
    listed = await store.list_jobs(JobFilter(), 10, None)
    assert [j.id for j in listed] == [newer.id, *sorted((j.id for j in tie), reverse=True), older.id]


async def test_list_jobs_pages_strictly_after_the_cursor(store: JobStore) -> None:
    """Pages following each last job's cursor cover every job once, in order."""
    for i in range(5):
        await add(store, make_job(at=BASE + timedelta(seconds=i // 2)))
    everything = await store.list_jobs(JobFilter(), 10, None)
    pages: list[Job] = []
    after = None
    while page := await store.list_jobs(JobFilter(), 2, after):
        pages += page
        after = JobCursor(to_micros(page[-1].created_at), page[-1].id)
    assert pages == everything and len(everything) == 5


async def test_list_jobs_filters_by_status_type_owner_and_time(store: JobStore) -> None:
    """Each filter condition narrows the listing; an empty status set matches nothing."""
    a = await add(store, make_job(owner="alice", type="noop", at=BASE))
    b = await add(store, make_job(owner="bob", type="sleep", at=BASE + timedelta(seconds=1)))
    c = await write(store, await add(store, make_job(owner="alice", type="sleep", at=BASE + timedelta(seconds=2))),
                    status=JobStatus.PROCESSING)  # fmt: skip

    async def ids(**conditions: object) -> list[str]:
        return [j.id for j in await store.list_jobs(JobFilter(**conditions), 10, None)]  # type: ignore[arg-type]

    assert await ids(statuses=frozenset({JobStatus.PENDING})) == [b.id, a.id]
    assert await ids(statuses=frozenset()) == []
    assert await ids(type="sleep") == [c.id, b.id]
    assert await ids(owner="alice") == [c.id, a.id]
    assert await ids(owner="alice", statuses=frozenset({JobStatus.PROCESSING})) == [c.id]
    assert await ids(created_after=BASE, created_before=BASE + timedelta(seconds=2)) == [b.id]


async def test_list_and_count_jobs_filter_by_flow_and_schedule(store: JobStore) -> None:
    """``flow_id`` and ``schedule_id`` narrow the listing and the count to that flow's or schedule's jobs."""
    first = await add(store, replace(make_job(at=BASE), flow_id="flow-1"))
    second = await add(store, replace(make_job(at=BASE + timedelta(seconds=1)), flow_id="flow-1"))
    await add(store, replace(make_job(), flow_id="flow-2"))
    scheduled = await add(store, replace(make_job(), schedule_id="schedule-1"))
    await add(store, make_job())
    listed = await store.list_jobs(JobFilter(flow_id="flow-1"), 10, None)
    assert [j.id for j in listed] == [second.id, first.id]
    assert await store.count_jobs(JobFilter(flow_id="flow-1")) == 2
    assert await store.count_jobs(JobFilter(flow_id="flow-1", owner="bob")) == 0
    assert await store.count_jobs(JobFilter(flow_id="no-such-flow")) == 0
    by_schedule = await store.list_jobs(JobFilter(schedule_id="schedule-1"), 10, None)
    assert [j.id for j in by_schedule] == [scheduled.id]
    assert await store.count_jobs(JobFilter(schedule_id="schedule-1")) == 1


async def test_count_jobs_counts_what_the_filter_matches(store: JobStore) -> None:
    """``count_jobs`` counts every job the filter matches."""
    for owner in ("alice", "alice", "bob"):
        await add(store, make_job(owner=owner))
    assert await store.count_jobs(JobFilter()) == 3
    assert await store.count_jobs(JobFilter(owner="alice")) == 2
    assert await store.count_jobs(JobFilter(statuses=frozenset({JobStatus.FAILED}))) == 0
    assert await store.count_jobs(JobFilter(statuses=frozenset())) == 0


# -- events ------------------------------------------------------------------------------------


async def _two_jobs_with_events(store: JobStore) -> tuple[Job, Job]:
    a = await add(store, make_job(owner="alice", type="noop", at=BASE))
    b = await add(store, make_job(owner="bob", type="sleep", at=BASE + timedelta(seconds=0.5)))
    a = await write(store, a)  # a v2 at +1s
    b = await write(store, b)  # b v2 at +1.5s
    a = await write(store, a)  # a v3 at +2s
    return a, b


async def test_list_events_across_jobs_in_cursor_order(store: JobStore) -> None:
    """Across jobs, events come ordered by (time, job id, version), strictly after the cursor."""
    a, b = await _two_jobs_with_events(store)
    events = await store.list_events(after=None, limit=10)
    assert [(e.job_id, e.version) for e in events] == [(a.id, 1), (b.id, 1), (a.id, 2), (b.id, 2), (a.id, 3)]
    rest = await store.list_events(after=EventCursor.of(events[1]), limit=2)
    assert rest == events[2:4]


async def test_list_events_in_one_instant_order_by_job_then_version(store: JobStore) -> None:
    """Events of the same instant order by job id, then version."""
    jobs = [await add(store, make_job(at=BASE)) for _ in range(3)]
    events = await store.list_events(after=None, limit=10)
    assert [e.job_id for e in events] == sorted(j.id for j in jobs)
    assert await store.list_events(after=EventCursor.of(events[0]), limit=10) == events[1:]


async def test_list_events_of_one_job_follow_its_versions(store: JobStore) -> None:
    """For one job, events follow versions; a cursor of that job resumes after its version."""
    a, _ = await _two_jobs_with_events(store)
    mine = await store.list_events(after=None, limit=10, job_id=a.id)
    assert [e.version for e in mine] == [1, 2, 3]
    assert await store.list_events(after=EventCursor.of(mine[0]), limit=10, job_id=a.id) == mine[1:]


async def test_list_events_of_one_job_ignore_another_jobs_cursor(store: JobStore) -> None:
    """A cursor from another job gives the job's events from its first version."""
    a, b = await _two_jobs_with_events(store)
    theirs = (await store.list_events(after=None, limit=10, job_id=b.id))[-1]
    mine = await store.list_events(after=EventCursor.of(theirs), limit=10, job_id=a.id)
    assert [e.version for e in mine] == [1, 2, 3]


async def test_list_events_filter_by_type_and_owner(store: JobStore) -> None:
    """Type and owner conditions keep only the matching jobs' events."""
    a, b = await _two_jobs_with_events(store)
    assert {e.job_id for e in await store.list_events(after=None, limit=10, type="sleep")} == {b.id}
    by_owner = await store.list_events(after=None, limit=10, owner="alice")
    assert [e.version for e in by_owner] == [1, 2, 3] and {e.job_id for e in by_owner} == {a.id}


async def test_list_logs_gives_the_newest_lines_oldest_first(store: JobStore) -> None:
    """``list_logs`` returns the last N LOG events of a job, oldest first, and nothing else."""
    job = await add(store, make_job())
    for i in range(4):
        new = changed(job)
        await store.update(new, job.version, JobEvent.of(new, JobEventKind.LOG, f"line {i}", LogLevel.INFO))
        job = await write(store, new)  # a PROGRESS event between the lines
    logs = await store.list_logs(job.id, 3)
    assert [e.message for e in logs] == ["line 1", "line 2", "line 3"]
    assert all(e.level is LogLevel.INFO for e in logs)


# -- stats and the sweeper's list ----------------------------------------------------------------


async def test_stats_count_by_type_and_status_with_run_time(store: JobStore) -> None:
    """Stats count jobs per type and status and sum the completed jobs' run time."""
    for seconds in (2, 3):
        job = await add(store, make_job(type="noop"))
        job = await write(
            store, job, status=JobStatus.PROCESSING, started_at=job.updated_at + timedelta(seconds=1)
        )
        assert job.started_at is not None
        await write(store, job, seconds=seconds, status=JobStatus.COMPLETED,
                    completed_at=job.updated_at + timedelta(seconds=seconds))  # fmt: skip
    await add(store, make_job(type="noop"))
    await add(store, make_job(type="sleep"))
    stats = (await store.stats()).by_type
    assert stats["noop"].by_status == {JobStatus.COMPLETED: 2, JobStatus.PENDING: 1}
    assert stats["noop"].completed_seconds_total == 5.0
    assert stats["sleep"].by_status == {JobStatus.PENDING: 1}


async def test_find_unenqueued_lists_only_due_unsent_pending_jobs(store: JobStore) -> None:
    """The sweeper sees PENDING unsent jobs written before the bound and due before the other."""
    due = await add(store, make_job(at=BASE))
    delayed_soon = await add(store, replace(make_job(at=BASE), run_at=BASE + timedelta(minutes=5)))
    await add(store, replace(make_job(at=BASE), run_at=BASE + timedelta(hours=5)))  # not due yet
    await add(store, make_job(at=BASE + timedelta(minutes=1)))  # too recent
    sent = await add(store, make_job(at=BASE))
    await store.mark_enqueued(sent.id, BASE)
    await write(store, await add(store, make_job(at=BASE)), seconds=0, status=JobStatus.CANCELLED)
    found = await store.find_unenqueued(
        updated_before=BASE + timedelta(seconds=30), run_before=BASE + timedelta(hours=1), limit=10
    )
    assert {j.id for j in found} == {due.id, delayed_soon.id}
    assert found[0].payload == due.payload


async def test_mark_enqueued_records_the_send_without_a_new_version(store: JobStore) -> None:
    """``mark_enqueued`` sets ``enqueued_at`` and leaves the version and events alone."""
    job = await add(store, make_job())
    await store.mark_enqueued(job.id, BASE + timedelta(seconds=1))
    stored = await store.get(job.id)
    assert stored is not None and stored.enqueued_at == BASE + timedelta(seconds=1) and stored.version == 1
    assert len(await store.list_events(after=None, limit=10, job_id=job.id)) == 1


async def test_a_job_back_to_pending_unsent_is_swept_again(store: JobStore) -> None:
    """A job written back to PENDING with no message (a retry) is on the sweeper's list again."""
    job = await add(store, make_job())
    await store.mark_enqueued(job.id, BASE)
    job = await store.get(job.id) or job
    job = await write(store, job, status=JobStatus.FAILED)
    await write(store, job, status=JobStatus.PENDING, enqueued_at=None)
    found = await store.find_unenqueued(
        updated_before=BASE + timedelta(hours=1), run_before=BASE + timedelta(hours=1), limit=10
    )
    assert [j.id for j in found] == [job.id]


# -- concurrent submissions (MongoDB writes their events and marks together) ---------------------


async def test_concurrent_inserts_each_store_their_created_event_once(store: JobStore) -> None:
    """Jobs inserted at once each get exactly their own CREATED event, readable at once."""
    jobs = [make_job(at=BASE + timedelta(microseconds=n)) for n in range(25)]
    results = await asyncio.gather(*(store.insert(job, created(job), LONG_AGO) for job in jobs))
    assert [new for _, new in results] == [True] * len(jobs)
    events = await store.list_events(after=None, limit=100)
    assert [(e.job_id, e.version, e.kind) for e in events] == [
        (job.id, 1, JobEventKind.CREATED) for job in jobs
    ]
    for job in jobs:
        [event] = await store.list_events(after=None, limit=10, job_id=job.id)
        assert event == created(job)


async def test_concurrent_marks_each_record_their_own_send(store: JobStore) -> None:
    """Marks made at once each record their job as sent (MongoDB: all at the latest of their times),
    and leave alone jobs no longer waiting for one."""
    jobs = [await add(store, make_job()) for _ in range(12)]
    marked_before, cancelled = jobs[0], jobs[1]
    await store.mark_enqueued(marked_before.id, BASE)
    await write(store, cancelled, seconds=0, status=JobStatus.CANCELLED)
    at = {job.id: BASE + timedelta(seconds=n + 1) for n, job in enumerate(jobs)}
    await asyncio.gather(*(store.mark_enqueued(job.id, at[job.id]) for job in jobs))
    stored = await store.get_many([job.id for job in jobs])
    assert stored[marked_before.id].enqueued_at == BASE  # the first mark stands
    assert stored[cancelled.id].enqueued_at is None and stored[cancelled.id].version == 2
    for job in jobs[2:]:
        enqueued_at = stored[job.id].enqueued_at
        assert enqueued_at is not None and at[job.id] <= enqueued_at <= max(at.values())
        assert stored[job.id].version == 1
    later = BASE + timedelta(hours=1)
    assert await store.find_unenqueued(updated_before=later, run_before=later, limit=20) == []


async def test_insert_answers_the_job_as_stored_with_its_message_unsent(store: JobStore) -> None:
    """A plain store's insert sends no message: the job comes back with no ``enqueued_at``, for the
    caller to send (and the sweeper finds it until then)."""
    job = await add(store, make_job(at=utcnow() - timedelta(minutes=1)))
    assert job.enqueued_at is None
    due = await store.find_unenqueued(updated_before=utcnow(), run_before=utcnow(), limit=10)
    assert [j.id for j in due] == [job.id]
