"""``Worker``: receive messages, claim their jobs, run the handlers, write the outcomes.

The guarantees are the service's (DESIGN.md §3, §4); the worker keeps its side of them:

* it receives only when a concurrency slot is free, and claims every job before running it;
* while a handler runs, a heartbeat extends the lease and the message's visibility, and notices a
  cancel request the control event may have missed; a lost lease stops the handler and nothing of
  that attempt is written again;
* a graceful stop waits ``shutdown_grace_seconds`` for running jobs, then gives the rest back
  (PENDING, the attempt not counted, the message visible at once).

Nothing a message, a payload, a handler or a backend does may end the worker loop: each delivery
runs in its own task that logs what went wrong, and the loop backs off on backend errors.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any, TypeAlias

import structlog

from core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    JobNotFoundError,
    LeaseLostError,
)
from core.flow_control import HeldError
from core.models import ClaimDecision, JobId, JobStatus
from core.ports import CONTROL, CancelRequested, ControlsChanged, Delivery, Resync
from core.service import ClaimResult, JobService, MessageFate
from workers.attempt import Attempt, Interrupt, seconds_until
from workers.owners import hold_owner_lock, release_dead_owners
from workers.presence import WorkerPresence

__all__ = ["Worker", "default_worker_id"]

log = structlog.get_logger("jobpulse.worker")

# In burst mode, while jobs run, look for new messages (their retries, say) this often.
BURST_POLL_SECONDS = 0.05
# After the grace period, how long the interrupted jobs get to write their release.
RELEASE_WRITE_SECONDS = 4.0
# While some of a worker's types are paused, it polls the others at most this long, and looks again.
PAUSED_POLL_SECONDS = 1.0
# With no long poll configured (wait time 0), an empty receive is followed by this pause.
IDLE_PAUSE_SECONDS = 0.5
# Cancel requests for jobs this worker does not (yet) run, remembered for a claim racing them.
REMEMBERED_CANCELS = 1_000


#: a message, with its claim's outcome when it came claimed (``process``'s do not)
Received: TypeAlias = tuple[Delivery, ClaimResult | Exception | None]


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, and readable in a job's events."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class _Backoff:
    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.cap, self.delay * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.delay = self.first


async def _wait_first(*aws: Coroutine[Any, Any, Any]) -> None:
    """Return as soon as one of ``aws`` finishes; cancel the others."""
    tasks = [asyncio.create_task(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _pause(seconds: float, stop: asyncio.Event) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Worker:
    """Runs the jobs of some types, up to ``concurrency`` at once, until stopped (or drained)."""

    def __init__(
        self,
        service: JobService,
        *,
        types: Sequence[str] | None = None,
        concurrency: int | None = None,
        worker_id: str | None = None,
        burst: bool = False,
    ) -> None:
        registry = service.registry
        if types is None:
            types = [t.name for t in registry if not t.external]
        for name in types:
            registry.get(name)  # an unknown name is a configuration mistake: say so now
        self.types = list(dict.fromkeys(types))
        if not self.types:
            raise ConfigurationError("the worker has no job types to run")
        self.concurrency = concurrency if concurrency is not None else service.settings.worker_concurrency
        if self.concurrency < 1:
            raise ConfigurationError(f"worker concurrency must be at least 1, got {self.concurrency}")
        self.worker_id = worker_id or default_worker_id()
        self.burst = burst
        self.service = service
        self.settings = service.settings
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[JobId, Attempt] = {}
        self._slot_freed = asyncio.Event()
        self._control_ready = asyncio.Event()
        self._unmatched_cancels: OrderedDict[JobId, bool] = OrderedDict()
        self._interrupting = False
        self.presence: WorkerPresence | None = None

    def running_job_ids(self) -> list[JobId]:
        """The jobs this worker runs now."""
        return list(self._running)

    def _present(self, stop: asyncio.Event) -> tuple[asyncio.Task[None], asyncio.Event]:
        """Heartbeat this worker's record in the workers registry until the returned event is set."""
        if self.presence is None:
            self.presence = WorkerPresence(self)
        halt = asyncio.Event()
        return asyncio.create_task(self.presence.run(stop, halt)), halt

    async def _absent(self, presence: tuple[asyncio.Task[None], asyncio.Event], *, leave: bool) -> None:
        task, halt = presence
        halt.set()
        await task
        if self.presence is not None:
            await (self.presence.leave() if leave else self.presence.beat())

    # -- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set (then stop gracefully) or, in burst mode, nothing is left."""
        stop = stop if stop is not None else asyncio.Event()
        self._interrupting = False
        self._control_ready.clear()
        with (
            structlog.contextvars.bound_contextvars(worker_id=self.worker_id),
            hold_owner_lock(self.service, self.worker_id),
        ):
            await self._release_dead_owners()
            log.info("worker started", types=self.types, concurrency=self.concurrency, burst=self.burst)
            control = asyncio.create_task(self._watch_control())
            presence = self._present(stop)
            try:
                # Listen for cancel requests before claiming anything, or one could slip by.
                await _wait_first(self._control_ready.wait(), stop.wait())
                await self._ensure_queues(stop)
                await self._receive_loop(stop)
            finally:
                await self._shutdown()
                await self._absent(presence, leave=True)
                control.cancel()
                with suppress(asyncio.CancelledError):
                    await control
            log.info("worker stopped")

    async def _release_dead_owners(self) -> None:
        """Embedded: jobs held by workers whose processes are gone go back now, not after their leases."""
        try:
            await release_dead_owners(self.service)
        except (BackendUnavailableError, OSError) as exc:
            log.warning("jobs of dead workers not checked; their leases will run out", error=str(exc))

    async def process(self, deliveries: Sequence[Delivery]) -> None:
        """Run messages someone else received (an AWS Lambda event source) as ``run`` runs its own:
        claimed, run under heartbeats, stopped by cancel requests; return once every one is settled."""
        self._interrupting = False
        self._control_ready.clear()
        with structlog.contextvars.bound_contextvars(worker_id=self.worker_id):
            control = asyncio.create_task(self._watch_control())
            presence = self._present(asyncio.Event())
            try:
                await self._control_ready.wait()
                for delivery in deliveries:
                    self._start(delivery)
                if self._tasks:
                    await asyncio.wait(set(self._tasks))
            finally:
                await self._absent(presence, leave=False)  # a warm container stays listed
                control.cancel()
                with suppress(asyncio.CancelledError):
                    await control

    async def _ensure_queues(self, stop: asyncio.Event) -> None:
        backoff = _Backoff(cap=30.0)
        while not stop.is_set():
            try:
                await self.service.queue.ensure_queues(self.types)
                return
            except BackendUnavailableError as exc:
                log.warning("queues not reachable; trying again", error=str(exc))
                await _pause(backoff.next(), stop)

    async def _receive_loop(self, stop: asyncio.Event) -> None:
        backoff = _Backoff()
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                await _wait_first(self._slot_freed.wait(), stop.wait())
                continue
            if self.burst:
                wait = BURST_POLL_SECONDS if self._tasks else 0.0
            else:
                wait = self.settings.wait_time_seconds
            try:
                deliveries = await self._receive(min(free, self.settings.max_messages), wait, stop)
            except Exception as exc:  # a backend hiccup must not end the worker
                log.warning("receive failed; backing off", error=str(exc), error_type=type(exc).__name__)
                await _pause(backoff.next(), stop)
                continue
            backoff.reset()
            if deliveries is None:
                return  # stopped while receiving
            for delivery, claimed in deliveries:
                self._start(delivery, claimed=claimed)
            if deliveries:
                continue
            if self.burst and not self._tasks:
                if await self._drained():
                    log.info("queue drained")
                    return
                continue
            if not self.burst and wait < IDLE_PAUSE_SECONDS:
                await _pause(IDLE_PAUSE_SECONDS - wait, stop)  # no long poll: do not spin

    async def _drained(self) -> bool:
        """Burst mode's last word: an empty receive is not proof on SQS (a short poll samples)."""
        try:
            depths = await self.service.queue.depths(self.types)
        except Exception as exc:
            log.warning("queue depths unavailable; taking the empty receive as drained", error=str(exc))
            return True
        if any(depth.ready for depth in depths.values()):
            await asyncio.sleep(BURST_POLL_SECONDS)
            return False
        return True

    async def _receive(self, max_messages: int, wait: float, stop: asyncio.Event) -> list[Received] | None:
        """Receive and claim (``JobService.receive_claims``), but give up the wait when ``stop`` is
        set; ``None`` then. Messages that came claimed after ``stop`` was set are given back (their
        jobs PENDING, the attempt not counted) rather than run.
        """
        visibility = self.settings.visibility_timeout
        types = await self._receivable()
        if len(types) < len(self.types):
            wait = min(wait, PAUSED_POLL_SECONDS)  # a resumed type is received again within it
            if not types:
                await _pause(PAUSED_POLL_SECONDS, stop)
                return None if stop.is_set() else []
        # Even without a wait, in a task of its own: a receive whose take is committing when it is
        # cancelled answers with what it took (``SqliteJobQueue.take_then``), which must not swallow
        # a cancellation of this worker; the worker's own cancellation stays this coroutine's.
        receiving = asyncio.create_task(
            self.service.receive_claims(types, max_messages, wait, self.worker_id, visibility)
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not receiving.done():
                # Messages a cancelled receive had taken reappear after their visibility timeout.
                receiving.cancel()
            await asyncio.wait({receiving})
        if receiving.cancelled():
            return None
        received: list[Received] = [*receiving.result()]
        if stop.is_set():
            for delivery, claimed in received:
                self._start(delivery, claimed=claimed, give_back=True)
            return None
        return received

    async def _receivable(self) -> list[str]:
        """This worker's types but the paused ones (their messages wait in the queue, untouched;
        one received all the same is held back by its claim)."""
        controls = self.service.controls
        if controls is None:
            return self.types
        try:
            await controls.limits(self.types[0])  # re-reads every type's record once it is stale
        except Exception as exc:  # the claims still hold the pause
            log.debug("flow control records not read", error=repr(exc))
            return self.types
        return [name for name in self.types if not controls.cached(name).paused]

    def _start(
        self,
        delivery: Delivery,
        asked_at: datetime | None = None,
        *,
        claimed: ClaimResult | Exception | None = None,
        give_back: bool = False,
    ) -> None:
        """Handle one message in a task of its own; ``asked_at``: when the queue was asked for it;
        ``claimed``: its claim's outcome when it came claimed (else the task claims it); ``give_back``:
        a job claimed to run is given back unrun (the worker is stopping)."""
        task = asyncio.create_task(
            self._process(delivery, asked_at, claimed, give_back), name=f"jobpulse job {delivery.job_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _shutdown(self) -> None:
        """Wait out the grace period, then give back what still runs."""
        if not self._tasks:
            return
        grace = self.settings.shutdown_grace_seconds
        log.info("waiting for running jobs", count=len(self._tasks), grace_seconds=grace)
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        if not pending:
            return
        self._interrupting = True
        log.warning("grace period over; giving running jobs back", count=len(pending))
        for running in list(self._running.values()):
            running.stop(Interrupt.SHUTDOWN)
        _, pending = await asyncio.wait(pending, timeout=RELEASE_WRITE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- cancel requests ----------------------------------------------------------------------
    async def _watch_control(self) -> None:
        backoff = _Backoff(cap=30.0)
        while True:
            try:
                async with self.service.bus.subscribe([CONTROL]) as subscription:
                    self._control_ready.set()
                    backoff.reset()
                    async for message in subscription:
                        if isinstance(message, CancelRequested):
                            self._cancel_requested(message.job_id)
                        elif isinstance(message, ControlsChanged) and self.service.controls is not None:
                            self.service.controls.invalidate()
                        elif isinstance(message, Resync):
                            await self._recheck_cancels()
                log.warning("control subscription ended; subscribing again")
            except Exception as exc:
                # Without the bus, cancel requests still arrive with the next heartbeat.
                self._control_ready.set()
                log.warning("control subscription failed; subscribing again", error=str(exc))
            await asyncio.sleep(backoff.next())

    def _cancel_requested(self, job_id: JobId) -> None:
        running = self._running.get(job_id)
        if running is None:
            self._unmatched_cancels[job_id] = True
            while len(self._unmatched_cancels) > REMEMBERED_CANCELS:
                self._unmatched_cancels.popitem(last=False)
            return
        log.info("cancel requested; stopping the handler", job_id=job_id)
        running.stop(Interrupt.CANCEL)

    async def _recheck_cancels(self, job_ids: Sequence[JobId] | None = None) -> None:
        """Read the store for cancel requests a gap in the bus (or a racing claim) may have hidden."""
        ids = list(job_ids if job_ids is not None else self._running)
        if not ids:
            return
        try:
            jobs = await self.service.store.get_many(ids)
        except BackendUnavailableError as exc:
            log.warning("cannot re-read running jobs; the heartbeat will", error=str(exc))
            return
        for job in jobs.values():
            if job.cancel_requested and job.status is JobStatus.PROCESSING:
                self._cancel_requested(job.id)

    # -- one message --------------------------------------------------------------------------
    async def _process(
        self,
        delivery: Delivery,
        asked_at: datetime | None,
        claimed: ClaimResult | Exception | None,
        give_back: bool = False,
    ) -> None:
        with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, type=delivery.type):
            try:
                await self._handle(delivery, asked_at, claimed, give_back)
            except LeaseLostError as exc:
                log.warning("lease lost; the job is someone else's now", error=str(exc))
            except (BackendUnavailableError, ConflictError) as exc:
                log.warning("job not updated; the message will be delivered again", error=str(exc))
            except JobNotFoundError:
                log.warning("the job disappeared while it ran; message dropped")
                with suppress(Exception):
                    await self.service.settle(delivery, MessageFate.ACK)
            except Exception:
                log.exception("unexpected error while handling a message")

    async def _handle(
        self,
        delivery: Delivery,
        asked_at: datetime | None,
        claimed: ClaimResult | Exception | None,
        give_back: bool = False,
    ) -> None:
        try:
            if isinstance(claimed, Exception):
                raise claimed  # the claim's own error, handled as if the claim had been made here
            if claimed is None:
                claimed = await self.service.claim(
                    delivery.job_id, self.worker_id, self.settings.visibility_timeout, leased_from=asked_at
                )
        except HeldError as held:
            log.debug("held back by its type's limits", reason=held.reason.value)
            await self.service.hold_back(delivery, held)
            return
        job = claimed.job
        if job is None:
            log.warning("message for a job that does not exist; dropped")
            await self.service.settle(delivery, MessageFate.ACK)
            return
        decision = claimed.decision
        if decision is ClaimDecision.RUN:
            assert claimed.claim is not None
            await self._run(Attempt(self.service, delivery, claimed.claim, job), give_back)
        elif decision is ClaimDecision.NOT_YET:
            await self.service.settle(delivery, MessageFate.RELEASE, seconds_until(self.service, job.run_at))
        elif decision is ClaimDecision.FAIL:
            log.warning("worker lost on the last attempt; job failed", error=job.error)
            await self.service.settle(delivery, MessageFate.DEAD_LETTER)
        elif job.status is JobStatus.PROCESSING and job.lease_until is not None:
            # Running under a live lease. The message may be the holder's own, back because its
            # visibility could not be extended: deleting it would leave nothing to run the job again
            # should the holder die. Hide it until the lease ends; then it is claimed, or dropped.
            delay = seconds_until(self.service, job.lease_until)
            log.info(
                "job running elsewhere; message hidden until its lease ends", retry_in_seconds=round(delay, 3)
            )
            await self.service.settle(delivery, MessageFate.RELEASE, delay)
        else:
            log.debug("message not needed; dropped", decision=decision.value, status=job.status.value)
            await self.service.settle(delivery, MessageFate.ACK)

    async def _run(self, attempt: Attempt, give_back: bool = False) -> None:
        job_id = attempt.job.id
        structlog.contextvars.bind_contextvars(attempt=attempt.ctx.attempt)
        superseded = self._running.get(job_id)
        if superseded is not None:
            # Our own earlier attempt outlived its lease and we claimed the job again: it must stop.
            superseded.stop(Interrupt.LEASE_LOST)
        self._running[job_id] = attempt
        try:
            if self._interrupting or give_back:
                attempt.stop(Interrupt.SHUTDOWN)
            elif self._unmatched_cancels.pop(job_id, False):
                # A cancel request raced our claim: believe the store, not the (maybe stale) message.
                await self._recheck_cancels([job_id])
            await attempt.run()
        finally:
            if self._running.get(job_id) is attempt:
                del self._running[job_id]
