"""``Flows``: jobs that wait for other jobs, and flows (graphs of jobs) made and watched as one.

``submit_flow`` checks the whole graph first (keys, cycles, every job's own input, dependencies
on existing jobs) and creates all of it or nothing (``FlowStore.insert_graph``). A flow's status
is derived from its jobs' (``flow_status``), so finishing a job never has to write the flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from core.dependencies import (
    FlowJobRef,
    FlowRecord,
    FlowState,
    FlowStore,
    expire_overdue,
    release_after,
    release_ready,
    sweep_waiting,
)
from core.errors import InvalidStateError, JobNotFoundError, UserFacingError, ValidationError
from core.models import (
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    JobEventKind,
    JobId,
    JobStatus,
    JSONValue,
    Principal,
    new_job_id,
)
from core.submission import SubmitRequest, created_event, new_job, new_job_ids

if TYPE_CHECKING:
    from core.service import JobService

__all__ = ["MAX_DEPENDENCIES", "MAX_FLOW_JOBS", "FlowItem", "FlowStatus", "FlowView", "Flows", "flow_status"]

#: the most jobs one ``submitFlow`` may create (README: Workflows)
MAX_FLOW_JOBS = 10_000
#: the most direct dependencies one job may have
MAX_DEPENDENCIES = 1_000


class FlowStatus:
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class FlowItem:
    """One job of a ``submitFlow``: its key, what to submit, and the keys it runs after."""

    key: str
    request: SubmitRequest
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowView:
    """A flow with its jobs as they are now (``jobs`` in the flow's order, by key)."""

    record: FlowRecord
    jobs: dict[str, Job]

    @property
    def status(self) -> str:
        return flow_status(self.record, list(self.jobs.values()))

    @property
    def progress(self) -> float:
        jobs = list(self.jobs.values())
        return sum(job.progress for job in jobs) / len(jobs) if jobs else 100.0

    @property
    def completed_at(self) -> datetime | None:
        if self.status == FlowStatus.RUNNING:
            return None
        times = [job.completed_at for job in self.jobs.values() if job.completed_at is not None]
        return max(times) if times else self.record.created_at


def flow_status(record: FlowRecord, jobs: Sequence[Job]) -> str:
    """COMPLETED when every job did; FAILED when any FAILED (or was cancelled) and none can still
    run; CANCELLED after ``cancelFlow``; RUNNING otherwise."""
    if record.cancelled:
        return FlowStatus.CANCELLED
    if all(job.status is JobStatus.COMPLETED for job in jobs):
        return FlowStatus.COMPLETED
    if all(job.status in TERMINAL_STATUSES for job in jobs):
        return FlowStatus.FAILED
    return FlowStatus.RUNNING


def _topological(items: Sequence[FlowItem]) -> list[str]:
    """The keys, dependencies first; a ``ValidationError`` naming a key on a cycle if there is one."""
    after = {item.key: item.after for item in items}
    indegree = {key: len(set(deps)) for key, deps in after.items()}
    children: dict[str, list[str]] = {key: [] for key in after}
    for key, deps in after.items():
        for dep in set(deps):
            children[dep].append(key)
    ready = [key for key, n in indegree.items() if n == 0]
    order: list[str] = []
    while ready:
        key = ready.pop()
        order.append(key)
        for child in children[key]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(after):
        stuck = next(item.key for item in items if indegree[item.key] > 0)
        raise ValidationError(f"the flow has a cycle through {stuck!r}", field=stuck)
    return order


def _refused(key: str, exc: UserFacingError) -> UserFacingError:
    """``exc`` (a job's own refusal) again, its ``field`` naming the flow key."""
    again = type(exc)(f"job {key!r}: {exc.message}", field=key)
    return again


class Flows:
    """Dependencies and flows over a ``JobService`` and its ``FlowStore``."""

    def __init__(self, service: JobService, store: FlowStore) -> None:
        self.service = service
        self.store = store

    # -- the service's hook: every finishing write -----------------------------------------------
    async def finished(self, job: Job) -> None:
        """``job`` just reached a final status: release its dependents (DESIGN.md §6)."""
        await release_after(self.service, job, self.store)

    async def sweep(self) -> int:
        """The sweeper's round for dependencies and flows (``core.dependencies.sweep_waiting``)."""
        return await sweep_waiting(self.service, self.store)

    async def expire(self) -> int:
        """The sweeper's round for ``expiresInSeconds`` (``core.dependencies.expire_overdue``)."""
        return await expire_overdue(self.service, self.store)

    # -- submission --------------------------------------------------------------------------
    def _waiting(self, job: Job, depends_on: tuple[JobId, ...], flow_id: str | None) -> Job:
        """``job`` as it is inserted: WAITING for ``depends_on`` (PENDING at once when it waits for
        nothing and the store queues in the insert's transaction)."""
        if not depends_on and self.store.releases_in_transaction:
            return replace(job, flow_id=flow_id)
        return replace(
            job, status=JobStatus.WAITING, depends_on=depends_on, waiting_for=depends_on, flow_id=flow_id
        )

    async def _insert(self, principal: Principal, flow: FlowRecord | None, jobs: list[Job]) -> list[Job]:
        message = f"submitted by {principal.subject}"
        events = [created_event(job, message) for job in jobs]
        written = await self.store.insert_graph(flow, list(zip(jobs, events, strict=True)))
        for event in events:
            await self.service._publish(event)
        if not self.store.releases_in_transaction:
            written = await release_ready(self.service, written)
            outside = {dep for job in jobs for dep in job.depends_on} - {job.id for job in jobs}
            if outside:
                for dep in (await self.service.store.get_many(list(outside))).values():
                    if dep.is_terminal:  # finished before the insert: settle what waits for it
                        await release_after(self.service, dep, self.store, written_by_store=False)
                written = list((await self.service.store.get_many([j.id for j in jobs])).values())
        else:
            for job in written:
                if job.status is JobStatus.PENDING and job.enqueued_at is None:
                    await self.service._send(job)
        return written

    async def submit_dependent(self, principal: Principal, request: SubmitRequest) -> Job:
        """``submitJob`` with ``dependsOn``: one WAITING job (NOT_FOUND on ``dependsOn`` for a
        dependency that is missing or another owner's; one already final counts as settled)."""
        depends_on = tuple(dict.fromkeys(request.depends_on))
        if len(depends_on) > MAX_DEPENDENCIES:
            raise ValidationError(f"at most {MAX_DEPENDENCIES} dependencies", field="dependsOn")
        job = new_job(
            self.service.registry, self.service.settings, principal.subject, request, self.service.clock()
        )
        job = replace(job, idempotency_key=None) if job.idempotency_key else job
        [written] = await self._insert(principal, None, [self._waiting(job, depends_on, None)])
        return written

    async def submit_flow(
        self, principal: Principal, name: str | None, items: Sequence[FlowItem]
    ) -> FlowView:
        """Create every job of the flow, or none (a ``UserFacingError`` whose ``field`` is a key)."""
        if not items:
            raise ValidationError("a flow needs at least one job", field="jobs")
        if len(items) > MAX_FLOW_JOBS:
            raise ValidationError(f"at most {MAX_FLOW_JOBS} jobs per flow, got {len(items)}", field="jobs")
        keys: dict[str, FlowItem] = {}
        for item in items:
            if not item.key or len(item.key) > 200:
                raise ValidationError("a key is 1 to 200 characters", field=item.key or "key")
            if item.key in keys:
                raise ValidationError(f"key {item.key!r} is used twice", field=item.key)
            keys[item.key] = item
        for item in items:
            for dep in item.after:
                if dep == item.key:
                    raise ValidationError(f"job {item.key!r} cannot run after itself", field=item.key)
                if dep not in keys:
                    raise ValidationError(f"job {item.key!r} runs after unknown key {dep!r}", field=item.key)
        _topological(items)
        now = self.service.clock()
        ids = dict(zip(keys, new_job_ids(len(items)), strict=True))
        flow_id = new_job_id()
        jobs: list[Job] = []
        for item in items:
            try:
                job = new_job(
                    self.service.registry,
                    self.service.settings,
                    principal.subject,
                    item.request,
                    now,
                    ids[item.key],
                )
            except UserFacingError as exc:
                raise _refused(item.key, exc) from exc
            depends_on = tuple(dict.fromkeys((*(ids[k] for k in item.after), *item.request.depends_on)))
            if len(depends_on) > MAX_DEPENDENCIES:
                raise ValidationError(f"at most {MAX_DEPENDENCIES} dependencies", field=item.key)
            # Idempotency keys do not apply inside a flow: the flow is created whole or not at all.
            jobs.append(self._waiting(replace(job, idempotency_key=None), depends_on, flow_id))
        record = FlowRecord(
            id=flow_id,
            owner=principal.subject,
            created_at=now,
            jobs=tuple(FlowJobRef(item.key, ids[item.key], tuple(item.after)) for item in items),
            name=name,
            state=FlowState.CREATED,
        )
        try:
            written = await self._insert(principal, record, jobs)
        except JobNotFoundError as exc:
            missing = exc.message.split()[1]  # "job <id> not found"
            key = next((i.key for i in items if missing in i.request.depends_on), "dependsOn")
            raise JobNotFoundError(exc.message, field=key) from exc
        by_id = {job.id: job for job in written}
        return FlowView(record, {ref.key: by_id[ref.job_id] for ref in record.jobs if ref.job_id in by_id})

    # -- reading -----------------------------------------------------------------------------
    async def view(self, record: FlowRecord) -> FlowView:
        found = await self.service.store.get_many([ref.job_id for ref in record.jobs])
        return FlowView(record, {ref.key: found[ref.job_id] for ref in record.jobs if ref.job_id in found})

    async def get(self, principal: Principal, flow_id: str) -> FlowView | None:
        record = await self.store.get_flow(flow_id)
        if record is None or record.state != FlowState.CREATED:
            return None
        if not (principal.is_admin or record.owner == principal.subject):
            return None
        return await self.view(record)

    async def _visible(self, principal: Principal, flow_id: str) -> FlowView:
        view = await self.get(principal, flow_id)
        if view is None:
            raise JobNotFoundError(f"flow {flow_id} not found", field="id")
        return view

    async def list(
        self, principal: Principal, statuses: frozenset[str] | None, first: int, after: str | None
    ) -> tuple[list[FlowView], bool]:
        """Newest first, owner-scoped (admin: all); ``statuses`` filters on the derived status."""
        owner = None if principal.is_admin else principal.subject
        views: list[FlowView] = []
        cursor = after
        while len(views) <= first:
            records = await self.store.list_flows(owner, max(first + 1, 50), cursor)
            if not records:
                break
            for record in records:
                view = await self.view(record)
                if statuses is None or view.status in statuses:
                    views.append(view)
            cursor = records[-1].id
        return views[:first], len(views) > first

    async def count(self, principal: Principal) -> int:
        return await self.store.count_flows(None if principal.is_admin else principal.subject)

    async def dependency_results(self, job: Job) -> dict[str, JSONValue]:
        """{id: result} of ``job``'s direct COMPLETED dependencies (large results as stored)."""
        if not job.depends_on:
            return {}
        found = await self.service.store.get_many(list(job.depends_on))
        return {
            d: found[d].result
            for d in job.depends_on
            if d in found and found[d].status is JobStatus.COMPLETED
        }

    # -- actions -----------------------------------------------------------------------------
    async def cancel(self, principal: Principal, flow_id: str) -> FlowView:
        """Every unfinished job ends CANCELLED (a running one is stopped), dependents first, so none
        is failed by a dependency's cancellation instead."""
        view = await self._visible(principal, flow_id)
        await self.store.set_flow(flow_id, cancelled=True)
        order = _topological([FlowItem(r.key, SubmitRequest("", {}), r.after) for r in view.record.jobs])
        for key in reversed(order):
            job = view.jobs.get(key)
            if job is None or job.is_terminal:
                continue
            try:
                await self.service.cancel(principal, job.id)
            except (InvalidStateError, JobNotFoundError):
                continue  # finished meanwhile
        return await self._visible(principal, flow_id)

    async def retry(self, principal: Principal, flow_id: str) -> FlowView:
        """Retry its FAILED and CANCELLED jobs; those after a retried job wait for it again."""
        view = await self._visible(principal, flow_id)
        retried = {
            job.id for job in view.jobs.values() if job.status in (JobStatus.FAILED, JobStatus.CANCELLED)
        }
        if not retried:
            raise InvalidStateError(f"flow {flow_id} has no FAILED or CANCELLED job", field="id")
        await self.store.set_flow(flow_id, cancelled=False)
        order = _topological([FlowItem(r.key, SubmitRequest("", {}), r.after) for r in view.record.jobs])
        now = self.service.clock()
        # Dependents first: each waits before what it waits for can finish again.
        for key in reversed(order):
            job = view.jobs.get(key)
            if job is None or job.id not in retried:
                continue
            waits = tuple(d for d in job.depends_on if d in retried)
            if not waits:
                await self.service.retry(principal, job.id)
                continue

            def decide(current: Job, waits: tuple[JobId, ...] = waits) -> tuple[Job, JobEvent]:
                new = current.waiting_again(now, waits)
                return new, JobEvent.of(new, JobEventKind.RETRYING, f"flow retried by {principal.subject}")

            await self.service._write(job.id, decide)
        return await self._visible(principal, flow_id)
