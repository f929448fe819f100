"""``cancelJobs`` and ``retryJobs`` (GraphQL and REST), on the embedded and the distributed backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.cursors import JobCursor
from core.models import Job, JobStatus, Principal
from core.ports import JobFilter
from tests.api.helpers import ADMIN, ALICE, BOB, Server
from tests.api.served import server_on
from tests.support.services import BACKENDS

CANCEL = "mutation($filter: JobFilter!) { cancelJobs(filter: $filter) }"
RETRY = "mutation($filter: JobFilter!) { retryJobs(filter: $filter) }"


@pytest.fixture(params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """An API server on either kind of backends."""
    async with server_on(request, tmp_path) as running:
        yield running


async def statuses(server: Server, *ids: str) -> list[str]:
    return [(await server.stored(job_id)).status.name for job_id in ids]


async def cancelled(server: Server, token: str, **filter: Any) -> int:
    count: int = (await server.data(token, CANCEL, filter=filter))["cancelJobs"]
    return count


async def retried(server: Server, token: str, **filter: Any) -> int:
    count: int = (await server.data(token, RETRY, filter=filter))["retryJobs"]
    return count


async def test_cancel_jobs_cancels_only_the_callers_matching_jobs(server: Server) -> None:
    """A user's cancelJobs cancels its own matching jobs, returns how many, and leaves others' alone."""
    mine = [await server.submit(ALICE) for _ in range(3)]
    other_type = await server.submit(ALICE, "collect")
    theirs = await server.submit(BOB)
    assert await cancelled(server, ALICE, status=["PENDING"], type="noop") == 3
    assert await statuses(server, *mine) == ["CANCELLED"] * 3
    assert await statuses(server, other_type, theirs) == ["PENDING", "PENDING"]


async def test_a_users_owner_filter_is_its_own(server: Server) -> None:
    """A user naming another owner in the filter still reaches only its own jobs."""
    theirs = await server.submit(BOB)
    assert await cancelled(server, ALICE, owner="bob") == 0
    assert await statuses(server, theirs) == ["PENDING"]


async def test_an_admin_cancels_anyones_jobs(server: Server) -> None:
    """An admin's cancelJobs reaches every owner's jobs, or one owner's with `owner`."""
    alice, bob = await server.submit(ALICE), await server.submit(BOB)
    assert await cancelled(server, ADMIN, owner="bob") == 1
    assert await statuses(server, alice, bob) == ["PENDING", "CANCELLED"]
    assert await cancelled(server, ADMIN) == 1
    assert await statuses(server, alice) == ["CANCELLED"]


async def test_cancel_jobs_counts_only_what_it_cancelled(server: Server) -> None:
    """Jobs already final match the filter but are not cancelled again, nor counted."""
    done = await server.submit(ALICE)
    await server.service.complete(await server.start(done), {"ok": True})
    pending = await server.submit(ALICE)
    assert await cancelled(server, ALICE) == 1
    assert await statuses(server, done, pending) == ["COMPLETED", "CANCELLED"]


async def test_retry_jobs_acts_on_failed_and_cancelled_matches_only(server: Server) -> None:
    """retryJobs puts CANCELLED and FAILED jobs back to PENDING and ignores the rest, whatever the filter says."""
    gone = [await server.submit(ALICE) for _ in range(2)]
    await cancelled(server, ALICE)
    failed = await server.submit(ALICE)
    await server.service.fail_attempt(await server.start(failed), "broken", retryable=False)
    waiting = await server.submit(ALICE)
    assert await retried(server, ALICE, status=["PENDING"]) == 0
    assert await retried(server, BOB) == 0
    assert await retried(server, ALICE) == 3
    assert await statuses(server, *gone, failed, waiting) == ["PENDING"] * 4


async def test_bulk_actions_span_pages(server: Server) -> None:
    """With pages of 2, five matching jobs are all cancelled, then all retried."""
    ids = [await server.submit(ALICE) for _ in range(5)]
    alice = Principal("alice", "user")
    assert await server.service.cancel_matching(alice, JobFilter(), page_size=2) == 5
    assert await statuses(server, *ids) == ["CANCELLED"] * 5
    assert await server.service.retry_matching(alice, JobFilter(), page_size=2) == 5
    assert await statuses(server, *ids) == ["PENDING"] * 5


async def test_a_job_finishing_meanwhile_is_not_clobbered(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listed job that completes before its cancel is written stays COMPLETED, and is not counted."""
    ids = [await server.submit(ALICE) for _ in range(3)]
    claim = await server.start(ids[1])
    store = server.service.store
    list_jobs = store.list_jobs

    async def listed_then_finished(filter: JobFilter, first: int, after: JobCursor | None) -> list[Job]:
        page = await list_jobs(filter, first, after)
        if any(job.id == ids[1] and job.status is JobStatus.PROCESSING for job in page):
            await server.service.complete(claim, {"ok": True})  # after the read, before the writes
        return page

    monkeypatch.setattr(store, "list_jobs", listed_then_finished)
    assert await cancelled(server, ALICE) == 2
    assert await statuses(server, *ids) == ["CANCELLED", "COMPLETED", "CANCELLED"]
    assert (await server.stored(ids[1])).result == {"ok": True}


async def test_rest_bulk_cancel_and_retry_answer_counts(server: Server) -> None:
    """POST /api/v1/jobs/cancel and /retry take the list's query parameters and answer {"count": n}."""
    ids = [await server.submit(ALICE) for _ in range(2)]
    async with server.http(ALICE) as client:
        response = await client.post("/api/v1/jobs/cancel", params={"status": "PENDING", "type": "noop"})
        assert (response.status_code, response.json()) == (200, {"count": 2})
        response = await client.post("/api/v1/jobs/retry", params={"type": "noop"})
        assert (response.status_code, response.json()) == (200, {"count": 2})
        refused = await client.post("/api/v1/jobs/cancel", params={"status": "DONE"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "status"
    assert await statuses(server, *ids) == ["PENDING", "PENDING"]
