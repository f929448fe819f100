"""jobUpdated and jobEvents over graphql-transport-ws: snapshot, order, replay, no gap, no duplicate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

import api.context
from core.backends.local import LocalEventBus
from core.cursors import EventCursor
from core.models import Claim, JobEvent, LogLevel, Principal
from tests.api.helpers import ADMIN, ALICE, BOB, Server, Subscription, make_jwt, wait_until

JOB_UPDATED = "subscription($id: ID!) { jobUpdated(id: $id) { id status version progress payload } }"
JOB_EVENTS = """
subscription($jobId: ID, $type: String, $after: String) {
  jobEvents(jobId: $jobId, type: $type, after: $after) {
    cursor kind message at
    job { id type owner version status payload }
  }
}"""


def versions(updates: list[dict[str, Any]]) -> list[int]:
    return [update["jobUpdated"]["version"] for update in updates]


def events(results: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """(job id, version, kind) of each jobEvents result."""
    return [
        (r["jobEvents"]["job"]["id"], r["jobEvents"]["job"]["version"], r["jobEvents"]["kind"])
        for r in results
    ]


def local_bus(server: Server) -> LocalEventBus:
    bus = server.service.bus
    assert isinstance(bus, LocalEventBus)
    return bus


async def unpublished(
    server: Server, change: Callable[[], Awaitable[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make ``change`` with the bus dropping its event, as an outage would: only the store has it."""

    async def drop(event: JobEvent) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(server.service.bus, "publish", drop)
        await change()


# -- jobUpdated ------------------------------------------------------------------------------


async def test_job_updated_emits_snapshot_then_every_change_then_completes(server: Server) -> None:
    """jobUpdated emits the job as it is, then each change in version order, and completes at COMPLETED."""
    job_id = await server.submit(ALICE, "sleep", {"seconds": 1})
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        snapshot = await updates.next()

        claim = await server.start(job_id)
        await server.service.progress(claim, 50, "half")
        await server.service.log(claim, LogLevel.INFO, "a line")
        await server.service.complete(claim, {"slept": 1})
        changes = await updates.take(4)

        assert await updates.ended()
    assert snapshot["jobUpdated"] == {
        "id": job_id,
        "status": "PENDING",
        "version": 1,
        "progress": 0.0,
        "payload": {"seconds": 1},
    }
    assert versions(changes) == [2, 3, 4, 5]
    assert [c["jobUpdated"]["status"] for c in changes] == [
        "PROCESSING",
        "PROCESSING",
        "PROCESSING",
        "COMPLETED",
    ]
    assert changes[1]["jobUpdated"]["progress"] == 50.0
    assert all(c["jobUpdated"]["payload"] == {"seconds": 1} for c in changes)


async def test_job_updated_of_a_finished_job_emits_it_and_completes(server: Server) -> None:
    """jobUpdated of a job already CANCELLED emits it once and completes."""
    job_id = await server.submit(ALICE)
    await server.service.cancel(Principal("alice"), job_id)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)

        only = await updates.next()

        assert await updates.ended()
    assert only["jobUpdated"]["status"] == "CANCELLED"


async def test_change_between_subscribe_and_snapshot_is_emitted_once(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change made after the bus subscription but before the snapshot read is in the snapshot, not repeated."""
    job_id = await server.submit(ALICE)
    store = server.service.store
    real_get = store.get
    claims: list[Claim] = []
    armed = True

    async def change_then_read(wanted: str) -> Any:
        nonlocal armed
        if armed and wanted == job_id:
            armed = False
            claims.append(await server.start(job_id))  # published while the subscription buffers
        return await real_get(wanted)

    monkeypatch.setattr(store, "get", change_then_read)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        snapshot = await updates.next()
        await server.service.progress(claims[0], 10, None)
        following = await updates.next()

    assert (snapshot["jobUpdated"]["version"], snapshot["jobUpdated"]["status"]) == (2, "PROCESSING")
    assert following["jobUpdated"]["version"] == 3


async def test_change_between_snapshot_read_and_emit_is_not_lost(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change made right after the snapshot was read is emitted next."""
    job_id = await server.submit(ALICE)
    store = server.service.store
    real_get = store.get
    armed = True

    async def read_then_change(wanted: str) -> Any:
        nonlocal armed
        job = await real_get(wanted)
        if armed and wanted == job_id:
            armed = False
            await server.start(job_id)
        return job

    monkeypatch.setattr(store, "get", read_then_change)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        results = await updates.take(2)

    assert [(r["jobUpdated"]["version"], r["jobUpdated"]["status"]) for r in results] == [
        (1, "PENDING"),
        (2, "PROCESSING"),
    ]


async def test_job_updated_recovers_changes_the_bus_missed(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Resync, jobUpdated re-reads the store and emits the changes whose events were lost."""
    job_id = await server.submit(ALICE)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        await updates.next()

        claim = await server.start(job_id)
        await updates.next()
        await unpublished(server, lambda: server.service.progress(claim, 30, "missed"), monkeypatch)
        await unpublished(server, lambda: server.service.complete(claim, None), monkeypatch)
        local_bus(server).fanout.resync_all("bus reconnected")
        recovered = await updates.take(2)

        assert await updates.ended()
    assert versions(recovered) == [3, 4]
    assert recovered[-1]["jobUpdated"]["status"] == "COMPLETED"


@pytest.mark.parametrize("whose", ["another user's", "a missing"])
async def test_job_updated_of_an_invisible_job_is_not_found(server: Server, whose: str) -> None:
    """jobUpdated of another user's job fails NOT_FOUND, exactly like a missing job."""
    job_id = await server.submit(ALICE) if whose == "another user's" else "no-such-job"
    async with server.ws(BOB) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        with pytest.raises(TransportQueryError) as failed:
            await updates.next()

    assert failed.value.errors is not None
    assert failed.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert job_id in failed.value.errors[0]["message"]


async def test_closed_subscriptions_leave_the_bus(server: Server) -> None:
    """A subscription the client stops no longer holds a bus subscription."""
    job_id = await server.submit(ALICE)
    async with server.ws(ALICE) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        await updates.next()
        feed = session.subscribe(JOB_EVENTS)
        await server.submit(ALICE)
        await feed.next()
        assert local_bus(server).fanout.subscription_count == 2

    await wait_until(lambda: local_bus(server).fanout.subscription_count == 0, "subscriptions to be released")


# -- jobEvents -------------------------------------------------------------------------------


async def test_job_events_feed_is_scoped_to_the_owner(server: Server) -> None:
    """A user's jobEvents carries its own jobs' events only; an admin's carries everyone's."""
    async with server.ws(BOB) as bob_session, server.ws(ADMIN) as admin_session:
        bobs_feed = bob_session.subscribe(JOB_EVENTS)
        admin_feed = admin_session.subscribe(JOB_EVENTS)
        await _ready(server, 2)

        alices = await server.submit(ALICE)
        bobs = await server.submit(BOB)

        bob_first = await bobs_feed.next()
        admin_seen = await admin_feed.take(2)

    assert events([bob_first]) == [(bobs, 1, "CREATED")]
    assert events(admin_seen) == [(alices, 1, "CREATED"), (bobs, 1, "CREATED")]


async def _ready(server: Server, count: int) -> None:
    """Wait until ``count`` subscriptions hold the bus: a live-only feed emits nothing to wait on."""
    await wait_until(lambda: local_bus(server).fanout.subscription_count >= count, "subscriptions to start")


async def test_job_events_filter_by_job_and_type(server: Server) -> None:
    """jobId and type narrow the feed."""
    watched = await server.submit(ALICE, "noop")
    async with server.ws(ALICE) as session:
        by_job = session.subscribe(JOB_EVENTS, jobId=watched)
        by_type = session.subscribe(JOB_EVENTS, type="sleep")
        await _ready(server, 2)

        await server.submit(ALICE, "noop")
        sleeper = await server.submit(ALICE, "sleep", {"seconds": 1})
        await server.start(watched)

        assert events([await by_job.next()]) == [(watched, 2, "STARTED")]
        assert events([await by_type.next()]) == [(sleeper, 1, "CREATED")]


async def test_job_events_carry_the_payload_and_a_message(server: Server) -> None:
    """An event's job has its payload (read from the store) and the event its message."""
    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS)
        await _ready(server, 1)
        await server.submit(ALICE, "noop", {"note": "carried"})

        created = (await feed.next())["jobEvents"]

    assert created["job"]["payload"] == {"note": "carried"}
    assert created["message"] == "submitted by alice"
    assert created["job"]["owner"] == "alice"


async def test_job_events_replay_after_a_cursor_then_go_live(server: Server) -> None:
    """With `after`, jobEvents replays every stored event after the cursor, then live ones, none twice."""
    async with server.ws(ALICE) as session:
        live = session.subscribe(JOB_EVENTS)
        await _ready(server, 1)
        job_id = await server.submit(ALICE, "sleep", {"seconds": 1})
        claim = await server.start(job_id)
        await server.service.progress(claim, 20, "a fifth")
        seen = await live.take(3)

        resumed = session.subscribe(JOB_EVENTS, after=seen[0]["jobEvents"]["cursor"])
        replayed = await resumed.take(2)
        await server.service.complete(claim, {"ok": 1})
        went_live = await resumed.next()

    assert events(replayed) == events(seen[1:])
    assert [r["jobEvents"]["cursor"] for r in replayed] == [s["jobEvents"]["cursor"] for s in seen[1:]]
    assert events([went_live]) == [(job_id, 4, "COMPLETED")]


async def test_change_during_replay_is_emitted_once(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event stored and published while the replay reads the store appears exactly once."""
    job_id = await server.submit(ALICE)
    store = server.service.store
    real_list = store.list_events
    armed = True

    async def change_then_list(**kwargs: Any) -> list[JobEvent]:
        nonlocal armed
        if armed:
            armed = False
            await server.start(job_id)  # stored (so replayed) and published (so buffered)
        return await real_list(**kwargs)

    first = (await store.list_events(after=None, limit=1, job_id=job_id))[0]
    monkeypatch.setattr(store, "list_events", change_then_list)
    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS, after=EventCursor.of(first).encode())
        replayed = await feed.next()
        await server.submit(ALICE)
        sentinel = await feed.next()

    assert events([replayed]) == [(job_id, 2, "STARTED")]
    assert sentinel["jobEvents"]["job"]["id"] != job_id


async def test_resume_from_every_cursor_of_a_finished_job(server: Server) -> None:
    """Resuming from each cursor of a finished job replays exactly the events after it, then goes live."""
    async with server.ws(ALICE) as session:
        live = session.subscribe(JOB_EVENTS)
        await _ready(server, 1)
        job_id = await server.submit(ALICE, "sleep", {"seconds": 1, "steps": 2})
        claim = await server.start(job_id)
        await server.service.log(claim, LogLevel.INFO, "working")
        await server.service.progress(claim, 50, "step 1 of 2")
        await server.service.progress(claim, 100, "step 2 of 2")
        await server.service.fail_attempt(claim, "gave up", retryable=False)
        history = await live.take(6)
        cursors = [h["jobEvents"]["cursor"] for h in history]

        resumed: list[Subscription] = []
        for index, cursor in enumerate(cursors):
            feed = session.subscribe(JOB_EVENTS, jobId=job_id, after=cursor)
            assert events(await feed.take(len(cursors) - index - 1)) == events(history[index + 1 :])
            resumed.append(feed)
        await server.service.retry(Principal("alice"), job_id)

        following = [await feed.next() for feed in resumed]

    assert [kind for _, _, kind in events(history)] == [
        "CREATED",
        "STARTED",
        "LOG",
        "PROGRESS",
        "PROGRESS",
        "FAILED",
    ]
    assert set(map(tuple, events(following))) == {(job_id, 7, "RETRYING")}


async def test_job_events_recover_events_the_bus_missed(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Resync, jobEvents re-reads the store from where it was and emits the lost events once."""
    job_id = await server.submit(ALICE)
    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS, jobId=job_id)
        await _ready(server, 1)
        claim = await server.start(job_id)
        await feed.next()
        await unpublished(server, lambda: server.service.log(claim, LogLevel.INFO, "lost"), monkeypatch)
        await unpublished(
            server, lambda: server.service.fail_attempt(claim, "x", retryable=False), monkeypatch
        )
        local_bus(server).fanout.resync_all("bus reconnected")
        recovered = await feed.take(2)
        local_bus(server).fanout.resync_all("again")  # nothing new since: nothing may be emitted twice
        await server.service.retry(Principal("alice"), job_id)
        following = await feed.next()

    assert events(recovered) == [(job_id, 3, "LOG"), (job_id, 4, "FAILED")]
    assert events([following]) == [(job_id, 5, "RETRYING")]


@pytest.mark.parametrize("whose", ["another user's", "a missing"])
async def test_job_events_of_an_invisible_job_is_not_found(server: Server, whose: str) -> None:
    """jobEvents(jobId) of another user's job fails NOT_FOUND, exactly like a missing job."""
    job_id = await server.submit(ALICE) if whose == "another user's" else "no-such-job"
    async with server.ws(BOB) as session:
        feed = session.subscribe(JOB_EVENTS, jobId=job_id)
        with pytest.raises(TransportQueryError) as failed:
            await feed.next()

    assert failed.value.errors is not None
    assert failed.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_job_events_with_a_foreign_cursor_is_a_validation_error(server: Server) -> None:
    """An `after` this server did not issue fails with code VALIDATION."""
    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS, after="garbage")
        with pytest.raises(TransportQueryError) as failed:
            await feed.next()

    assert failed.value.errors is not None
    assert failed.value.errors[0]["extensions"]["code"] == "VALIDATION"


async def test_queries_and_mutations_work_over_the_websocket(server: Server) -> None:
    """The websocket connection's token authorises queries and mutations too."""
    async with server.ws(ALICE) as session:
        created = await session.execute(
            'mutation { submitJob(input: {type: "noop", payload: {}}) { ... on Job { owner } } }'
        )
        with pytest.raises(TransportQueryError) as forbidden:
            await session.execute("{ stats { totalJobs } }")

    assert created == {"submitJob": {"owner": "alice"}}
    assert forbidden.value.errors is not None
    assert forbidden.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_subscription_ends_when_its_token_expires(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authorisation is checked on every event: once the JWT has expired, the next event ends the stream."""
    token = make_jwt("carol", expires_in=3600)
    job_id = await server.submit(token)
    async with server.ws(token) as session:
        updates = session.subscribe(JOB_UPDATED, id=job_id)
        await updates.next()
        later = datetime.now(UTC) + timedelta(hours=2)
        monkeypatch.setattr(api.context, "utcnow", lambda: later)

        await server.start(job_id)
        with pytest.raises(TransportQueryError) as failed:
            await updates.next()

    assert failed.value.errors is not None
    assert failed.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
