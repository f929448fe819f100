"""``WorkerPresence``: a worker's record in the workers registry, heartbeated while it runs.

Every ``heartbeat_seconds`` the worker writes who it is, what it runs and how many attempts it
finished and failed (counted from the events its own service writes); readers call it LOST after
three silent intervals (``core.operations``). A graceful stop writes DRAINING while running jobs
finish, then removes the record. A Lambda container heartbeats only while it is invoked, so its
record says so with a longer interval (``LAMBDA_HEARTBEAT_SECONDS``) and no LOST alert is sent
for it: a reaped container is not an incident.
"""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import suppress
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import structlog

from core.backends.store.operations import operations_for
from core.models import JobEvent, JobEventKind, JobId
from core.operations import OperationsStore, WorkerRecord

if TYPE_CHECKING:
    from workers.runtime import Worker

__all__ = ["LAMBDA_HEARTBEAT_SECONDS", "LAMBDA_WORKER_PREFIX", "WorkerPresence", "jobpulse_version"]

log = structlog.get_logger("jobpulse.worker")

LAMBDA_WORKER_PREFIX = "lambda:"
#: a warm Lambda container is frozen between invocations; it counts as LOST after 3 of these
LAMBDA_HEARTBEAT_SECONDS = 300.0


def jobpulse_version() -> str:
    try:
        return version("jobpulse")
    except PackageNotFoundError:
        return "unknown"


class WorkerPresence:
    """Heartbeats one ``Worker``'s record; see the module docstring."""

    def __init__(self, worker: Worker, store: OperationsStore | None = None) -> None:
        self.worker = worker
        self.service = worker.service
        self.store = store if store is not None else operations_for(worker.service.store)
        self.interval = worker.settings.worker_heartbeat_seconds
        if worker.worker_id.startswith(LAMBDA_WORKER_PREFIX):
            self.interval = max(self.interval, LAMBDA_HEARTBEAT_SECONDS)
        self.started_at = self.service.clock()
        self.processed = 0
        self.failed = 0
        self._attempts: dict[JobId, int] = {}  # job → the attempt this worker started
        self._listening = False

    def record(self, *, draining: bool = False) -> WorkerRecord:
        return WorkerRecord(
            id=self.worker.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=jobpulse_version(),
            types=tuple(self.worker.types),
            concurrency=self.worker.concurrency,
            heartbeat_seconds=self.interval,
            started_at=self.started_at,
            last_seen_at=self.service.clock(),
            draining=draining,
            running=tuple(self.worker.running_job_ids()),
            processed=self.processed,
            failed=self.failed,
        )

    def on_event(self, event: JobEvent) -> None:
        """Counts this worker's finished attempts (a ``JobService`` listener: never raises)."""
        job = event.job
        if event.kind is JobEventKind.STARTED:
            if job.lease_owner == self.worker.worker_id:
                self._attempts[job.id] = job.attempts
            return
        attempt = self._attempts.get(job.id)
        if attempt is None or event.kind in (JobEventKind.PROGRESS, JobEventKind.LOG):
            return
        del self._attempts[job.id]
        if event.kind is JobEventKind.RETRYING and job.attempts < attempt:
            return  # given back unfinished (shutdown): not an attempt that ended
        self.processed += 1
        if event.kind in (JobEventKind.FAILED, JobEventKind.RETRYING):
            self.failed += 1

    def listen(self) -> None:
        if not self._listening:
            self.service.listeners.append(self.on_event)
            self._listening = True

    async def beat(self, *, draining: bool = False) -> None:
        """Write the record now; a failure is logged (the next beat tries again)."""
        try:
            await self.store.save_worker(self.record(draining=draining))
        except Exception as exc:
            log.warning("worker heartbeat not written", error=str(exc))

    async def run(self, stop: asyncio.Event, halt: asyncio.Event) -> None:
        """Heartbeat until ``halt``; once ``stop`` is set, as DRAINING. A beat is never cut short:
        a write cancelled in flight might still land after the record is removed."""
        self.listen()
        while not halt.is_set():
            await self.beat(draining=stop.is_set())
            waits = [halt.wait()] if stop.is_set() else [halt.wait(), stop.wait()]
            tasks = [asyncio.ensure_future(w) for w in waits]
            try:
                await asyncio.wait(tasks, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()

    async def leave(self) -> None:
        """Remove the record (a clean stop); stop counting."""
        with suppress(ValueError):
            self.service.listeners.remove(self.on_event)
        self._listening = False
        try:
            await self.store.remove_worker(self.worker.worker_id)
        except Exception as exc:
            log.warning("worker record not removed; it will show as LOST", error=str(exc))
