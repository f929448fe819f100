"""jobUpdated over graphql-transport-ws: snapshot, then every change in order, then completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

import api.context
from core.models import Claim, LogLevel, Principal
from tests.api.helpers import ALICE, BOB, Server, make_jwt, wait_until
from tests.api.streaming import JOB_EVENTS, JOB_UPDATED, local_bus, unpublished, versions


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
