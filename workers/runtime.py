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
import enum
import os
import random
import secrets
import socket
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog

from core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    JobNotFoundError,
    LeaseLostError,
    UnknownJobTypeError,
    ValidationError,
)
from core.jobtypes import JobType, PermanentError, Retry
from core.models import Claim, ClaimDecision, Job, JobId, JobStatus, JSONValue
from core.ports import CONTROL, CancelRequested, Delivery, Resync
from core.service import JobService
from workers.context import WorkerContext

__all__ = ["JobTimeoutError", "Worker", "default_worker_id"]

log = structlog.get_logger("jobpulse.worker")

# SQS keeps a received message hidden for at most 12 hours; longer waits are re-hidden on redelivery.
MAX_RELEASE_SECONDS = 12 * 3600 - 60
# In burst mode, while jobs run, look for new messages (their retries, say) this often.
BURST_POLL_SECONDS = 0.05
# After the grace period, how long the interrupted jobs get to write their release.
RELEASE_WRITE_SECONDS = 4.0
# With no long poll configured (wait time 0), an empty receive is followed by this pause.
IDLE_PAUSE_SECONDS = 0.5
MAX_RESULT_BYTES = 8 * 1024 * 1024
# Cancel requests for jobs this worker does not (yet) run, remembered for a claim racing them.
REMEMBERED_CANCELS = 1_000


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, and readable in a job's events."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobTimeoutError(Exception):
    """The handler ran longer than the job's ``timeout_seconds``."""


class _Interrupt(enum.Enum):
    CANCEL = "cancel requested"
    LEASE_LOST = "lease lost"
    SHUTDOWN = "worker shutting down"


@dataclass(eq=False)
class _Running:
    """A handler task and what the worker needs to stop it and finish its attempt."""

    delivery: Delivery
    ctx: WorkerContext
    task: asyncio.Task[JSONValue]
    interrupt: _Interrupt | None = None

    def stop(self, reason: _Interrupt) -> None:
        # A lost lease outranks everything: nothing of this attempt may be written any more.
        if self.task.done() or (self.interrupt is not None and reason is not _Interrupt.LEASE_LOST):
            return
        self.interrupt = reason
        self.task.cancel()


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
        self._running: dict[JobId, _Running] = {}
        self._slot_freed = asyncio.Event()
        self._control_ready = asyncio.Event()
        self._unmatched_cancels: OrderedDict[JobId, bool] = OrderedDict()
        self._interrupting = False

    # -- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set (then stop gracefully) or, in burst mode, nothing is left."""
        stop = stop if stop is not None else asyncio.Event()
        self._interrupting = False
        self._control_ready.clear()
        with structlog.contextvars.bound_contextvars(worker_id=self.worker_id):
            log.info("worker started", types=self.types, concurrency=self.concurrency, burst=self.burst)
            control = asyncio.create_task(self._watch_control())
            try:
                # Listen for cancel requests before claiming anything, or one could slip by.
                await _wait_first(self._control_ready.wait(), stop.wait())
                await self._ensure_queues(stop)
                await self._receive_loop(stop)
            finally:
                await self._shutdown()
                control.cancel()
                with suppress(asyncio.CancelledError):
                    await control
            log.info("worker stopped")

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
            for delivery in deliveries:
                self._start(delivery)
            if deliveries:
                continue
            if self.burst and not self._tasks:
                log.info("queue drained")
                return
            if not self.burst and wait < IDLE_PAUSE_SECONDS:
                await _pause(IDLE_PAUSE_SECONDS - wait, stop)  # no long poll: do not spin

    async def _receive(self, max_messages: int, wait: float, stop: asyncio.Event) -> list[Delivery] | None:
        """Receive, but give up the wait when ``stop`` is set; ``None`` then (and nothing kept)."""
        receive = self.service.queue.receive(self.types, max_messages, wait, self.settings.visibility_timeout)
        if wait <= 0:
            return await receive
        receiving = asyncio.create_task(receive)
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
        deliveries = receiving.result()
        if stop.is_set():
            for delivery in deliveries:
                with suppress(Exception):
                    await self.service.queue.release(delivery, 0)
            return None
        return deliveries

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._process(delivery), name=f"jobpulse job {delivery.job_id}")
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
            running.stop(_Interrupt.SHUTDOWN)
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
        running.stop(_Interrupt.CANCEL)

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
    async def _process(self, delivery: Delivery) -> None:
        with structlog.contextvars.bound_contextvars(job_id=delivery.job_id, type=delivery.type):
            try:
                await self._handle(delivery)
            except LeaseLostError as exc:
                log.warning("lease lost; the job is someone else's now", error=str(exc))
            except (BackendUnavailableError, ConflictError) as exc:
                log.warning("job not updated; the message will be delivered again", error=str(exc))
            except JobNotFoundError:
                log.warning("the job disappeared while it ran; message dropped")
                with suppress(Exception):
                    await self.service.queue.ack(delivery)
            except Exception:
                log.exception("unexpected error while handling a message")

    async def _handle(self, delivery: Delivery) -> None:
        queue = self.service.queue
        claimed = await self.service.claim(delivery.job_id, self.worker_id, self.settings.visibility_timeout)
        job = claimed.job
        if job is None:
            log.warning("message for a job that does not exist; dropped")
            await queue.ack(delivery)
            return
        decision = claimed.decision
        if decision is ClaimDecision.RUN:
            assert claimed.claim is not None
            await self._run(delivery, claimed.claim, job)
        elif decision is ClaimDecision.NOT_YET:
            await queue.release(delivery, self._seconds_until(job.run_at))
        elif decision is ClaimDecision.FAIL:
            log.warning("worker lost on the last attempt; job failed", error=job.error)
            await queue.dead_letter(delivery)
        else:
            log.debug("message not needed; dropped", decision=decision.value, status=job.status.value)
            await queue.ack(delivery)

    def _seconds_until(self, when: datetime | None) -> float:
        if when is None:
            return 0.0
        return min(MAX_RELEASE_SECONDS, max(0.0, (when - self.service.clock()).total_seconds()))

    # -- one attempt --------------------------------------------------------------------------
    async def _run(self, delivery: Delivery, claim: Claim, job: Job) -> None:
        structlog.contextvars.bind_contextvars(attempt=claim.attempt)
        ctx = WorkerContext(self.service, claim, job, on_lease_lost=lambda: self._lease_lost(job.id))
        try:
            job_type = self.service.registry.get(job.type)
            payload = job_type.parse(job.payload)
        except (UnknownJobTypeError, ValidationError) as exc:
            log.warning("job cannot run", error=str(exc))
            await self._fail(ctx, delivery, str(exc), retryable=False)
            return
        if self._interrupting:
            await self._give_back(ctx, delivery)
            return
        log.info("job started")
        task = asyncio.create_task(self._call(job_type, ctx, payload, job.timeout_seconds))
        running = _Running(delivery, ctx, task)
        self._running[job.id] = running
        heartbeat = asyncio.create_task(self._heartbeat(running))
        try:
            if self._unmatched_cancels.pop(job.id, False):
                # A cancel request raced our claim: believe the store, not the (maybe stale) message.
                await self._recheck_cancels([job.id])
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
            del self._running[job.id]
        await self._settle(running)

    @staticmethod
    async def _call(job_type: JobType[Any], ctx: WorkerContext, payload: Any, seconds: float) -> JSONValue:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await job_type.handler(ctx, payload)
        except TimeoutError:
            if scope.expired():
                raise JobTimeoutError(f"timed out after {seconds:g}s") from None
            raise

    def _lease_lost(self, job_id: JobId) -> None:
        running = self._running.get(job_id)
        if running is not None:
            running.stop(_Interrupt.LEASE_LOST)

    async def _heartbeat(self, running: _Running) -> None:
        """Every third of the lease: extend it and the message's visibility, and look for a cancel."""
        visibility = self.settings.visibility_timeout
        claim = running.ctx.claim
        while True:
            await asyncio.sleep(visibility / 3)
            try:
                job = await running.ctx.write(
                    lambda current: self.service.heartbeat(claim, visibility, current=current)
                )
            except (LeaseLostError, JobNotFoundError):
                log.warning("lease lost; stopping the handler")
                running.stop(_Interrupt.LEASE_LOST)
                return
            except (BackendUnavailableError, ConflictError) as exc:
                log.warning("heartbeat not written; trying again", error=str(exc))
                continue
            try:
                await self.service.queue.extend(running.delivery, visibility)
            except BackendUnavailableError as exc:
                log.warning("message visibility not extended", error=str(exc))
            if job.cancel_requested:
                log.info("cancel requested; stopping the handler")
                running.stop(_Interrupt.CANCEL)

    async def _settle(self, running: _Running) -> None:
        """Write what the handler's run came to, then act on the message accordingly."""
        ctx, delivery, task = running.ctx, running.delivery, running.task
        interrupt = running.interrupt
        if interrupt is _Interrupt.LEASE_LOST:
            await ctx.close()
            log.warning("attempt abandoned: the lease was lost")
        elif interrupt is _Interrupt.CANCEL:
            await ctx.close()
            await ctx.write(lambda current: self.service.finish_cancelled(ctx.claim, current=current))
            await self.service.queue.ack(delivery)
            log.info("job cancelled")
        elif task.cancelled() and interrupt is _Interrupt.SHUTDOWN:
            await self._give_back(ctx, delivery)
        elif task.cancelled():
            await self._fail(ctx, delivery, "the handler was cancelled from within", retryable=True)
        elif (exc := task.exception()) is not None:
            await self._failed(ctx, delivery, exc)
        else:
            await self._succeeded(ctx, delivery, task.result())

    async def _succeeded(self, ctx: WorkerContext, delivery: Delivery, result: JSONValue) -> None:
        try:
            encoded = orjson.dumps(result)
        except TypeError as exc:
            message = f"the handler's result is not JSON-serialisable: {exc}"
            await self._fail(ctx, delivery, message, retryable=False)
            return
        if len(encoded) > MAX_RESULT_BYTES:
            message = f"the handler's result is {len(encoded)} bytes; the limit is {MAX_RESULT_BYTES}"
            await self._fail(ctx, delivery, message, retryable=False)
            return
        plain: JSONValue = orjson.loads(encoded)  # what the store keeps: plain JSON, no datetimes etc.
        await ctx.flush()
        await ctx.close()
        await ctx.write(lambda current: self.service.complete(ctx.claim, plain, current=current))
        await self.service.queue.ack(delivery)
        log.info("job completed")

    async def _failed(self, ctx: WorkerContext, delivery: Delivery, exc: BaseException) -> None:
        if isinstance(exc, Retry):
            await self._fail(ctx, delivery, str(exc), retryable=True, retry_delay=exc.delay)
        elif isinstance(exc, PermanentError):
            await self._fail(ctx, delivery, str(exc) or type(exc).__name__, retryable=False)
        elif isinstance(exc, JobTimeoutError):
            await self._fail(ctx, delivery, str(exc), retryable=True)
        else:
            log.warning("handler raised", exc_info=exc)
            await self._fail(ctx, delivery, f"{type(exc).__name__}: {exc}", retryable=True)

    async def _fail(
        self,
        ctx: WorkerContext,
        delivery: Delivery,
        message: str,
        *,
        retryable: bool,
        retry_delay: float | None = None,
    ) -> None:
        await ctx.close()
        job = await ctx.write(
            lambda current: self.service.fail_attempt(
                ctx.claim, message, retryable=retryable, retry_delay=retry_delay, current=current
            )
        )
        if job.status is JobStatus.PENDING:
            delay = self._seconds_until(job.run_at)
            await self.service.queue.release(delivery, delay)
            log.info("attempt failed; will retry", error=message, retry_in_seconds=round(delay, 3))
        else:
            await self.service.queue.dead_letter(delivery)
            log.warning("job failed", error=message)

    async def _give_back(self, ctx: WorkerContext, delivery: Delivery) -> None:
        await ctx.close()
        await ctx.write(
            lambda current: self.service.release(ctx.claim, _Interrupt.SHUTDOWN.value, current=current)
        )
        await self.service.queue.release(delivery, 0)
        log.info("job given back for another worker")
