"""Flows: graphs of jobs created all or nothing, and watched, cancelled and retried as one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.dependencies import FlowJobRef, FlowRecord, FlowState
from core.errors import JobNotFoundError, UnknownJobTypeError, ValidationError
from core.flows import MAX_FLOW_JOBS, FlowItem, Flows, FlowStatus, FlowView
from core.models import Job, JobStatus, Principal
from core.ports import JobFilter
from core.service import JobService
from core.submission import SubmitRequest, created_event
from tests.core.test_dependencies import finish
from tests.support.services import BACKENDS, clocked_service_on

ALICE = Principal("alice")
NOOP = SubmitRequest("noop", {})


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with clocked_service_on(request, tmp_path) as service:
        yield service


def flows(service: JobService) -> Flows:
    assert service.flows is not None
    return service.flows


def item(key: str, *after: str, request: SubmitRequest = NOOP) -> FlowItem:
    return FlowItem(key, request, tuple(after))


async def reread(service: JobService, view: FlowView) -> FlowView:
    again = await flows(service).get(ALICE, view.record.id)
    assert again is not None
    return again


async def job(service: JobService, view: FlowView, key: str) -> Job:
    return (await reread(service, view)).jobs[key]


async def nothing_created(service: JobService) -> bool:
    return await service.store.count_jobs(JobFilter()) == 0 and await flows(service).count(ALICE) == 0


async def test_a_flow_starts_its_roots_and_holds_the_rest(service: JobService) -> None:
    """A flow's jobs without dependencies are PENDING, the others WAITING."""
    view = await flows(service).submit_flow(ALICE, "pipeline", [item("a"), item("b", "a"), item("c", "a")])
    assert (await job(service, view, "a")).status is JobStatus.PENDING
    assert (await job(service, view, "b")).status is JobStatus.WAITING
    assert view.status == FlowStatus.RUNNING


async def test_a_fan_in_starts_when_all_its_parents_complete(service: JobService) -> None:
    """The fan-in job becomes PENDING once the last of its parents completes."""
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b"), item("sheet", "a", "b")])
    await finish(service, view.jobs["a"])
    assert (await job(service, view, "sheet")).status is JobStatus.WAITING
    await finish(service, view.jobs["b"])
    assert (await job(service, view, "sheet")).status is JobStatus.PENDING


async def test_a_flow_completes_when_every_job_did(service: JobService) -> None:
    """The flow is COMPLETED, with a completion time, when all its jobs are."""
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a")])
    await finish(service, view.jobs["a"])
    await finish(service, await job(service, view, "b"))
    done = await reread(service, view)
    assert (done.status, done.progress, done.completed_at is not None) == (FlowStatus.COMPLETED, 100.0, True)


async def test_a_failed_job_fails_the_flow(service: JobService) -> None:
    """A failure fails the jobs after it, and the flow ends FAILED."""
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a"), item("c", "b")])
    await finish(service, view.jobs["a"], ok=False)
    done = await reread(service, view)
    assert [j.status for j in done.jobs.values()] == [JobStatus.FAILED] * 3
    assert done.status == FlowStatus.FAILED


async def test_a_cycle_is_refused_on_one_of_its_keys(service: JobService) -> None:
    """A cycle is VALIDATION on a key of the cycle, and nothing is created."""
    with pytest.raises(ValidationError) as raised:
        await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a", "c"), item("c", "b")])
    assert raised.value.field in {"b", "c"}
    assert await nothing_created(service)


async def test_a_self_dependency_is_refused(service: JobService) -> None:
    """A job that runs after itself is VALIDATION on its key."""
    with pytest.raises(ValidationError) as raised:
        await flows(service).submit_flow(ALICE, None, [item("a", "a")])
    assert raised.value.field == "a"


async def test_an_unknown_key_is_refused(service: JobService) -> None:
    """``after`` naming no job of the flow is VALIDATION on the key that names it."""
    with pytest.raises(ValidationError) as raised:
        await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "zz")])
    assert raised.value.field == "b"
    assert await nothing_created(service)


async def test_one_refused_job_refuses_the_whole_flow(service: JobService) -> None:
    """A job refused on its own (unknown type) refuses the flow, its code kept, its key the field."""
    bad = SubmitRequest("no-such-type", {})
    with pytest.raises(UnknownJobTypeError) as raised:
        await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a", request=bad)])
    assert raised.value.field == "b"
    assert await nothing_created(service)


async def test_a_missing_outside_dependency_refuses_the_whole_flow(service: JobService) -> None:
    """A ``dependsOn`` naming no job is NOT_FOUND on the key, and nothing is created."""
    ghost = SubmitRequest("noop", {}, depends_on=("00000000-0000-7000-8000-000000000000",))
    with pytest.raises(JobNotFoundError) as raised:
        await flows(service).submit_flow(ALICE, None, [item("a"), item("b", request=ghost)])
    assert raised.value.field == "b"
    assert await nothing_created(service)


async def test_a_flow_over_the_limit_is_refused(service: JobService) -> None:
    """More than ``MAX_FLOW_JOBS`` jobs is VALIDATION on ``jobs``."""
    with pytest.raises(ValidationError) as raised:
        await flows(service).submit_flow(ALICE, None, [item(str(n)) for n in range(MAX_FLOW_JOBS + 1)])
    assert raised.value.field == "jobs"


async def test_a_chain_of_500_is_created_whole(service: JobService) -> None:
    """A chain of 500 jobs is one flow: its first job PENDING, the rest WAITING."""
    chain = [item("0")] + [item(str(n), str(n - 1)) for n in range(1, 500)]
    view = await flows(service).submit_flow(ALICE, None, chain)
    statuses = [j.status for j in view.jobs.values()]
    assert (len(statuses), statuses[0], set(statuses[1:])) == (500, JobStatus.PENDING, {JobStatus.WAITING})


async def test_cancelling_a_flow_cancels_every_unfinished_job(service: JobService) -> None:
    """``cancelFlow``: every unfinished job, WAITING ones too, ends CANCELLED; the flow CANCELLED."""
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b"), item("c", "a", "b")])
    await finish(service, view.jobs["a"])
    done = await flows(service).cancel(ALICE, view.record.id)
    statuses = {key: j.status for key, j in done.jobs.items()}
    assert statuses == {"a": JobStatus.COMPLETED, "b": JobStatus.CANCELLED, "c": JobStatus.CANCELLED}
    assert done.status == FlowStatus.CANCELLED


async def test_retrying_a_flow_reruns_failed_jobs_and_their_dependents_wait(service: JobService) -> None:
    """``retryFlow``: the failed job is PENDING again, the jobs after it WAITING for it."""
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a")])
    await finish(service, view.jobs["a"], ok=False)
    again = await flows(service).retry(ALICE, view.record.id)
    assert (again.jobs["a"].status, again.jobs["b"].status) == (JobStatus.PENDING, JobStatus.WAITING)
    await finish(service, again.jobs["a"])
    assert (await job(service, view, "b")).status is JobStatus.PENDING


async def test_another_owner_cannot_see_a_flow(service: JobService) -> None:
    """A flow is owner-scoped: another user gets nothing."""
    view = await flows(service).submit_flow(ALICE, None, [item("a")])
    assert await flows(service).get(Principal("bob"), view.record.id) is None


async def test_flows_are_listed_newest_first(service: JobService) -> None:
    """``flows`` lists the owner's flows, newest first, filtered by status."""
    first = await flows(service).submit_flow(ALICE, "one", [item("a")])
    second = await flows(service).submit_flow(ALICE, "two", [item("a")])
    listed, more = await flows(service).list(ALICE, None, 10, None)
    assert [v.record.id for v in listed] == [second.record.id, first.record.id] and not more
    done, _ = await flows(service).list(ALICE, frozenset({FlowStatus.COMPLETED}), 10, None)
    assert done == []


# Distributed only: embedded flows are inserted in one transaction, so there is no half-made flow.
@pytest.mark.parametrize("service", ["distributed"], indirect=True)
async def test_a_flow_stuck_in_creation_is_deleted_by_the_sweeper(service: JobService) -> None:
    """A half-inserted flow (the process died before marking it created) is deleted, jobs and all."""
    store = flows(service).store
    assert not store.releases_in_transaction
    now = service.clock()
    partial = Job(
        id="01900000-0000-7000-8000-000000000001",
        type="noop",
        owner="alice",
        payload={},
        status=JobStatus.WAITING,
        flow_id="f1",
        created_at=now,
        updated_at=now,
    )
    record = FlowRecord("f1", "alice", now, (FlowJobRef("a", partial.id),), state=FlowState.CREATING)
    from core.backends.store.flows_sqlite import flow_to_dict

    await store.flows.insert_one({"_id": "f1", **flow_to_dict(record)})  # type: ignore[attr-defined]
    await service.store.insert_many([(partial, created_event(partial, "x"))], now)
    service.clock.offset = timedelta(seconds=service.settings.sweep_grace_seconds + 1)  # type: ignore[attr-defined]
    await flows(service).sweep()
    assert await service.store.get(partial.id) is None
    assert await store.get_flow("f1") is None


async def test_roots_a_crash_left_waiting_are_released_by_the_sweeper(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow marked created whose roots were never released (a crash) has them PENDING after a sweep."""

    async def crash(service: JobService, jobs: list[Job]) -> list[Job]:
        return jobs  # the process died before releasing the roots

    monkeypatch.setattr("core.flows.release_ready", crash)
    view = await flows(service).submit_flow(ALICE, None, [item("a"), item("b", "a")])
    monkeypatch.undo()
    service.clock.offset = timedelta(seconds=service.settings.sweep_grace_seconds + 1)  # type: ignore[attr-defined]
    await flows(service).sweep()
    assert (await job(service, view, "a")).status is JobStatus.PENDING
    assert (await job(service, view, "b")).status is JobStatus.WAITING


async def test_a_failure_cascades_down_a_long_chain(service: JobService) -> None:
    """A failed first job fails every job of a chain of 200 after it (no recursion limit)."""
    chain = [item("0")] + [item(str(n), str(n - 1)) for n in range(1, 200)]
    view = await flows(service).submit_flow(ALICE, None, chain)
    await finish(service, view.jobs["0"], ok=False)
    done = await reread(service, view)
    assert {j.status for j in done.jobs.values()} == {JobStatus.FAILED}
    assert done.status == FlowStatus.FAILED
