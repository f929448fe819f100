"""Dependencies between jobs: the flow store port, and the release of dependents (DESIGN.md §6).

A dependent is WAITING with the ids it still waits for (``Job.waiting_for``). When a job reaches
a final status, each WAITING dependent is written (conditionally, through the state machine's
``Job.dependency_settled``): the id is removed; with none left it becomes PENDING, unsent, and
is sent as any PENDING job is (§2); under the ``FAIL`` policy a failed or cancelled dependency
fails it, and so on down the graph.

Embedded, the store does this in the finishing write's own transaction (``releases_in_transaction``)
and ``release_after`` only publishes what it wrote; distributed, ``release_after`` writes right
after the finishing write, and ``sweep_waiting`` repairs what a crash in between left undone.

``expire_overdue`` is the sweeper's pass for ``expiresInSeconds``: a PENDING job never started
whose ``expires_at`` has passed ends CANCELLED "expired" (its dependents then follow their policy),
without waiting for a worker of its type to claim it. A WAITING job is not due yet: its window
starts when it is released (``Job.released_to_queue``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import structlog

from core.errors import ConflictError, JobNotFoundError
from core.models import TERMINAL_STATUSES, Job, JobEvent, JobEventKind, JobId, JobStatus

if TYPE_CHECKING:
    from core.service import JobService

__all__ = [
    "FlowJobRef",
    "FlowRecord",
    "FlowState",
    "FlowStore",
    "expire_overdue",
    "release_after",
    "release_event",
    "settle_writes",
    "sweep_waiting",
]

log = structlog.get_logger("jobpulse.dependencies")

#: set while ``release_after`` runs, so that its own writes do not start another release
_releasing: contextvars.ContextVar[bool] = contextvars.ContextVar("jobpulse_releasing", default=False)


class FlowState:
    """A flow record's creation state (distributed mode's all-or-nothing insert)."""

    CREATING = "creating"
    CREATED = "created"


@dataclass(frozen=True, slots=True)
class FlowJobRef:
    """One job of a flow: its key in the flow, its id, and the keys it runs after."""

    key: str
    job_id: JobId
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A stored flow: its jobs by key; its status is derived from theirs (``core.flows``)."""

    id: str
    owner: str
    created_at: datetime
    jobs: tuple[FlowJobRef, ...]
    name: str | None = None
    state: str = FlowState.CREATED
    cancelled: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class FlowStore(Protocol):
    """Flows and the dependency index beside a job store (``core/backends/store/flows_*.py``)."""

    #: True when a finishing write releases its dependents in its own transaction (SQLite)
    releases_in_transaction: bool

    async def insert_graph(self, flow: FlowRecord | None, jobs: Sequence[tuple[Job, JobEvent]]) -> list[Job]:
        """Store these WAITING jobs (and ``flow``) all or nothing; return the jobs as written.

        Embedded: one transaction, in which jobs waiting for nothing become PENDING (enqueued) and
        dependencies already final are settled. Distributed: the flow is stored ``creating``, the
        jobs WAITING, then the flow ``created``; the caller releases (``release_ready``).
        Raises ``JobNotFoundError`` for a dependency that is missing or another owner's.
        """

    async def dependents(self, job_id: JobId, *, waiting_only: bool) -> list[Job]:
        """Jobs that depend on ``job_id`` (only the WAITING ones if ``waiting_only``)."""

    async def find_waiting(self, *, updated_before: datetime, limit: int) -> list[Job]:
        """WAITING jobs last written before ``updated_before``, oldest first (the sweeper's list)."""

    async def find_expired(self, *, now: datetime, limit: int) -> list[Job]:
        """PENDING jobs never started whose ``expires_at`` is at or before ``now``, soonest first."""

    def take_released(self, job_id: JobId, version: int) -> list[JobEvent]:
        """The events of the dependents the write of ``job_id`` at ``version`` released (embedded)."""

    async def get_flow(self, flow_id: str) -> FlowRecord | None: ...

    async def list_flows(self, owner: str | None, first: int, after: str | None) -> list[FlowRecord]:
        """Newest first, strictly after the flow ``after`` (an id)."""

    async def count_flows(self, owner: str | None) -> int: ...

    async def set_flow(
        self, flow_id: str, *, state: str | None = None, cancelled: bool | None = None
    ) -> None: ...

    async def find_creating(self, *, created_before: datetime, limit: int) -> list[FlowRecord]: ...

    async def delete_flow(self, flow: FlowRecord) -> None:
        """Delete a flow stuck in ``creating`` and whatever of its jobs were inserted."""


def release_event(job: Job, dependency: JobId) -> JobEvent | None:
    """The event of a dependent's release write (``job`` as ``dependency_settled`` made it).

    A dependent that still waits gets no event (as a heartbeat gets none): its status is unchanged,
    and a fan-in of a thousand would otherwise store a thousand snapshots of its dependency list.
    """
    if job.status is JobStatus.FAILED:
        return JobEvent.of(job, JobEventKind.FAILED, job.error)
    if job.status is JobStatus.PENDING:
        return JobEvent.of(job, JobEventKind.CREATED, f"dependencies done (last: {dependency})")
    return None


def settle_writes(
    finished: Job, dependents: Sequence[Job], now: datetime
) -> list[tuple[Job, Job, JobEvent | None]]:
    """For each dependent, (as read, as it must be written, its event) after ``finished`` ended."""
    writes: list[tuple[Job, Job, JobEvent | None]] = []
    for dependent in dependents:
        new = dependent.dependency_settled(finished.id, finished.status, now)
        if new is not None:
            writes.append((dependent, new, release_event(new, finished.id)))
    return writes


async def _settle_one(service: JobService, dependent_id: JobId, finished: Job) -> Job | None:
    """Write one dependent's release, conditionally, re-reading on conflict; ``None``: nothing to do."""
    for _ in range(20):
        job = await service.store.get(dependent_id)
        if job is None:
            return None
        new = job.dependency_settled(finished.id, finished.status, service.clock())
        if new is None:
            return None
        event = release_event(new, finished.id)
        written = await service.store.update(new, job.version, event)
        if written is not None:
            if event is not None:
                await service._publish(event)
            return written
    raise ConflictError(f"job {dependent_id} kept changing while its dependency {finished.id} was settled")


async def release_after(
    service: JobService, finished: Job, flows: FlowStore, *, written_by_store: bool | None = None
) -> None:
    """After ``finished`` reached a final status: release (or fail) its dependents, down the graph.

    ``written_by_store``: whether the finishing write released them already (default: the store's
    ``releases_in_transaction``); the sweeper passes ``False`` to write what is left to write.
    """
    if _releasing.get():
        return  # the running release's worklist takes this one
    token = _releasing.set(True)
    in_transaction = flows.releases_in_transaction if written_by_store is None else written_by_store
    try:
        if in_transaction:
            await _publish_released(service, finished, flows)
            return
        worklist = [finished]
        while worklist:
            done = worklist.pop()
            for dependent in await flows.dependents(done.id, waiting_only=True):
                written = await _settle_one(service, dependent.id, done)
                if written is None:
                    continue
                if written.status in TERMINAL_STATUSES:
                    worklist.append(written)
                elif written.status is JobStatus.PENDING and written.enqueued_at is None:
                    await service._send(written)
    finally:
        _releasing.reset(token)


async def _publish_released(service: JobService, finished: Job, flows: FlowStore) -> None:
    """Embedded: the store released in the finishing transaction; publish (and send) what it wrote."""
    for event in flows.take_released(finished.id, finished.version):
        await service._publish(event)
        # Queued in that transaction too, unless the queue lives elsewhere (SQLite store + SQS).
        if event.job.status is JobStatus.PENDING and event.job.enqueued_at is None:
            await service._send(event.job)


async def release_ready(service: JobService, jobs: Sequence[Job]) -> list[Job]:
    """WAITING jobs with nothing left to wait for → PENDING and sent (a distributed flow's roots);
    the jobs as they are after it."""
    after: list[Job] = []
    for job in jobs:
        after.append(job)
        if job.status is not JobStatus.WAITING or job.waiting_for:
            continue
        new = job.released_to_queue(service.clock())
        event = JobEvent.of(new, JobEventKind.CREATED, "no dependencies to wait for")
        written = await service.store.update(new, job.version, event)
        if written is None:
            continue  # someone else released (or cancelled) it first
        await service._publish(event)
        await service._send(written)
        after[-1] = written
    return after


async def sweep_waiting(service: JobService, flows: FlowStore, limit: int = 500) -> int:
    """Repair what a crash left undone: release WAITING jobs whose dependencies are final, and
    delete flows stuck in ``creating``. Returns how many jobs it wrote."""
    now = service.clock()
    grace = timedelta(seconds=service.settings.sweep_grace_seconds)
    for flow in await flows.find_creating(created_before=now - grace, limit=limit):
        log.warning("deleting a flow stuck in creation", flow_id=flow.id)
        await flows.delete_flow(flow)
    waiting = await flows.find_waiting(updated_before=now - grace, limit=limit)
    wrote = 0
    flow_states: dict[str, bool] = {}
    for job in waiting:
        if job.flow_id is not None:
            if job.flow_id not in flow_states:
                record = await flows.get_flow(job.flow_id)
                flow_states[job.flow_id] = record is not None and record.state == FlowState.CREATED
            if not flow_states[job.flow_id]:
                continue
        if not job.waiting_for:
            await release_ready(service, [job])
            wrote += 1
            continue
        deps = await service.store.get_many(list(job.waiting_for))
        for dep_id in job.waiting_for:
            dep = deps.get(dep_id)
            if dep is not None and dep.is_terminal:
                await release_after(service, dep, flows, written_by_store=False)
                wrote += 1
    if wrote:
        log.info("sweeper released waiting jobs", count=wrote)
    return wrote


async def _expire_one(service: JobService, overdue: Job) -> bool:
    """One overdue job → CANCELLED "expired", unless it was claimed or ended meanwhile."""
    wrote = False

    def decide(job: Job) -> tuple[Job, JobEvent] | None:
        nonlocal wrote
        now = service.clock()
        wrote = job.status is JobStatus.PENDING and job.is_expired(now)
        if not wrote:
            return None
        new = job.cancelled(now)
        why = f"expired: not started within {job.expires_in_seconds} s of becoming due"
        return new, JobEvent.of(new, JobEventKind.CANCELLED, why)

    await service._write(overdue.id, decide, current=overdue)
    return wrote


async def expire_overdue(service: JobService, flows: FlowStore, limit: int = 500) -> int:
    """End CANCELLED "expired" every PENDING job not started by its ``expires_at``; how many it ended.

    Each is one conditional write through the service's write path, decided again on the job as
    read: a worker's claim that lands first wins (the job runs), one that lands second finds the
    job CANCELLED and drops its message. The finishing write releases the dependents.
    """
    ended = 0
    for overdue in await flows.find_expired(now=service.clock(), limit=limit):
        try:
            ended += await _expire_one(service, overdue)
        except (JobNotFoundError, ConflictError) as exc:
            log.warning("expired job not ended; next round retries", job_id=overdue.id, error=str(exc))
    if ended:
        log.info("sweeper ended expired jobs", count=ended)
    return ended
