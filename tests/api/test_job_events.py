"""jobEvents over graphql-transport-ws: owner-scoped, replay after a cursor, then live, no gap, no duplicate."""

from __future__ import annotations

from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from core.cursors import EventCursor
from core.models import JobEvent, LogLevel, Principal
from tests.api.helpers import ADMIN, ALICE, BOB, Server, Subscription
from tests.api.streaming import JOB_EVENTS, events, local_bus, subscribed, unpublished


async def test_job_events_feed_is_scoped_to_the_owner(server: Server) -> None:
    """A user's jobEvents carries its own jobs' events only; an admin's carries everyone's."""
    async with server.ws(BOB) as bob_session, server.ws(ADMIN) as admin_session:
        bobs_feed = bob_session.subscribe(JOB_EVENTS)
        admin_feed = admin_session.subscribe(JOB_EVENTS)
        await subscribed(server, 2)

        alices = await server.submit(ALICE)
        bobs = await server.submit(BOB)

        bob_first = await bobs_feed.next()
        admin_seen = await admin_feed.take(2)

    assert events([bob_first]) == [(bobs, 1, "CREATED")]
    assert events(admin_seen) == [(alices, 1, "CREATED"), (bobs, 1, "CREATED")]


async def test_job_events_filter_by_job_and_type(server: Server) -> None:
    """jobId and type narrow the feed."""
    watched = await server.submit(ALICE, "noop")
    async with server.ws(ALICE) as session:
        by_job = session.subscribe(JOB_EVENTS, jobId=watched)
        by_type = session.subscribe(JOB_EVENTS, type="sleep")
        await subscribed(server, 2)

        await server.submit(ALICE, "noop")
        sleeper = await server.submit(ALICE, "sleep", {"seconds": 1})
        await server.start(watched)

        assert events([await by_job.next()]) == [(watched, 2, "STARTED")]
        assert events([await by_type.next()]) == [(sleeper, 1, "CREATED")]


async def test_job_events_carry_the_payload_and_a_message(server: Server) -> None:
    """An event's job has its payload (read from the store) and the event its message."""
    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS)
        await subscribed(server, 1)
        await server.submit(ALICE, "noop", {"note": "carried"})

        created = (await feed.next())["jobEvents"]

    assert created["job"]["payload"] == {"note": "carried"}
    assert created["message"] == "submitted by alice"
    assert created["job"]["owner"] == "alice"


async def test_job_events_replay_after_a_cursor_then_go_live(server: Server) -> None:
    """With `after`, jobEvents replays every stored event after the cursor, then live ones, none twice."""
    async with server.ws(ALICE) as session:
        live = session.subscribe(JOB_EVENTS)
        await subscribed(server, 1)
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
        await subscribed(server, 1)
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
        await subscribed(server, 1)
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


async def test_event_cursor_starts_a_feed_that_misses_nothing_after_it(server: Server) -> None:
    """eventCursor, read before a listing, lets jobEvents replay every change made after it (the
    dashboard's first load): here a job created between the cursor and the subscription."""
    cursor = (await server.data(ALICE, "{ eventCursor }"))["eventCursor"]
    between = await server.submit(ALICE)

    async with server.ws(ALICE) as session:
        feed = session.subscribe(JOB_EVENTS, after=cursor)
        replayed = await feed.next()
        await subscribed(server, 1)
        await server.start(between)
        live = await feed.next()

    assert events([replayed, live]) == [(between, 1, "CREATED"), (between, 2, "STARTED")]
