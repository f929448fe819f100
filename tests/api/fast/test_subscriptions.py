"""Live subscriptions emit the same results with the fast renderer as with graphql-core's executor.

``api.fast.live_render`` renders plain-field selections without graphql-core; a stock server
executes every event with graphql-core. The same job, driven through the same changes on a
server of each kind, must reach the subscribers as the same results, in the same order.
"""

from __future__ import annotations

from typing import Any

from core.models import LogLevel
from tests.api.fast.conftest import ServerSettings
from tests.api.helpers import ALICE, Server, run_server

#: compiles to a plan on the fast server
PLAIN = """subscription($id: ID!) { jobUpdated(id: $id) {
    __typename type status progress progressMessage attempts maxAttempts owner error version } }"""
#: has resolver fields (payload, result): graphql-core on both servers. (Not ``logs``: it reads
#: the store when an event renders, so what it shows depends on timing on either path.)
RESOLVED = """subscription($id: ID!) { jobUpdated(id: $id) { status payload result } }"""
#: ``result`` has a resolver with a live value: compiles on the fast server
RESULT = """subscription($id: ID!) { jobUpdated(id: $id) { status progress progressMessage result error } }"""
#: compiles, with a nested object
EVENTS = """subscription($after: String) { jobEvents(after: $after) {
    __typename kind message level job { __typename type status progress attempts } } }"""


async def live(server: Server) -> list[list[dict[str, Any]]]:
    """What each subscription emits while a job is claimed, reports progress, logs and completes."""
    job_id = await server.submit(ALICE, "sleep", {"seconds": 1})
    after = (await server.data(ALICE, "{ eventCursor }"))["eventCursor"]
    async with server.ws(ALICE) as session:
        updates = [session.subscribe(query, id=job_id) for query in (PLAIN, RESOLVED, RESULT)]
        events = session.subscribe(EVENTS, after=after)
        snapshots = [await subscription.next() for subscription in updates]

        claim = await server.start(job_id)
        await server.service.progress(claim, 50, "half")
        await server.service.log(claim, LogLevel.INFO, "a line")
        await server.service.complete(claim, {"slept": 1})

        emitted = [[snapshot, *await s.take(4)] for snapshot, s in zip(snapshots, updates, strict=True)]
        emitted.append(await events.take(4))
        for subscription in updates:
            assert await subscription.ended()
    return emitted


async def test_fast_and_stock_subscriptions_emit_alike(server_settings: ServerSettings) -> None:
    """Every subscription emits the same results in the same order on the fast and the stock path."""
    async with run_server(server_settings("fast")) as server:
        fast = await live(server)
    async with run_server(server_settings("stock"), fast_paths=False) as server:
        stock = await live(server)
    assert fast == stock
    assert [r["jobUpdated"]["status"] for r in fast[0]][-1] == "COMPLETED"
    assert fast[2][-1]["jobUpdated"]["result"] == {"slept": 1}
    assert len(fast[3]) == 4
