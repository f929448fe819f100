"""``Attempt``: one claimed run of one job — the handler under a heartbeat, then its outcome written.

While the handler runs, a heartbeat every third of the lease extends the lease and the message's
visibility and reads the cancel flag. ``stop`` interrupts the handler: for a cancel request, a lost
lease (after which nothing of this attempt is written), or shutdown (the job is given back). The
outcome decides the message's fate: acknowledged, hidden until the retry, or dead-lettered.
"""

from __future__ import annotations

import asyncio
import enum
from contextlib import suppress
from datetime import datetime
from typing import Any

import orjson
import structlog

from core.blobs import BlobNotFoundError
from core.errors import (
    BackendUnavailableError,
    ConflictError,
    JobNotFoundError,
    LeaseLostError,
    UnknownJobTypeError,
    ValidationError,
)
from core.jobtypes import JobType, PermanentError, Retry
from core.models import Claim, Job, JobStatus, JSONValue
from core.ports import Delivery
from core.service import JobService, MessageFate
from core.write_path import MAX_RELEASE_SECONDS, release_delay
from workers.context import WorkerContext

__all__ = [
    "MAX_RELEASE_SECONDS",
    "MAX_RESULT_BYTES",
    "Attempt",
    "Interrupt",
    "JobTimeoutError",
    "seconds_until",
]

log = structlog.get_logger("jobpulse.worker")

MAX_RESULT_BYTES = 8 * 1024 * 1024


class JobTimeoutError(Exception):
    """The handler ran longer than the job's ``timeout_seconds``."""


class Interrupt(enum.Enum):
    """Why a handler was stopped before it finished."""

    CANCEL = "cancel requested"
    LEASE_LOST = "lease lost"
    SHUTDOWN = "worker shutting down"


def seconds_until(service: JobService, when: datetime | None) -> float:
    """How long until ``when`` by the service's clock, as a message delay (0 to 12 hours)."""
    return release_delay(when, service.clock())


async def _call(job_type: JobType[Any], ctx: WorkerContext, payload: Any, seconds: float) -> JSONValue:
    try:
        async with asyncio.timeout(seconds) as scope:
            return await job_type.handler(ctx, payload)
    except TimeoutError:
        if scope.expired():
            raise JobTimeoutError(f"timed out after {seconds:g}s") from None
        raise


class Attempt:
    """The attempt ``claim`` of ``job``, delivered by ``delivery``."""

    def __init__(self, service: JobService, delivery: Delivery, claim: Claim, job: Job) -> None:
        self.service = service
        self.delivery = delivery
        self.job = job
        self.ctx = WorkerContext(service, claim, job, on_lease_lost=lambda: self.stop(Interrupt.LEASE_LOST))
        self.interrupt: Interrupt | None = None
        self._task: asyncio.Task[JSONValue] | None = None

    def stop(self, reason: Interrupt) -> None:
        """Interrupt the handler (or keep it from starting); a lost lease outranks other reasons."""
        if self._task is not None and self._task.done():
            return
        if self.interrupt is not None and reason is not Interrupt.LEASE_LOST:
            return
        self.interrupt = reason
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> None:
        """Run the handler to its end (or interruption) and write the outcome."""
        try:
            job_type = self.service.registry.get(self.job.type)
            # A large payload is kept as a blob: the handler gets the real one.
            payload = job_type.parse(await self.service.blobs.resolve(self.job.payload))
        except (UnknownJobTypeError, ValidationError, BlobNotFoundError) as exc:
            log.warning("job cannot run", error=str(exc))
            await self._fail(str(exc), retryable=False)
            return
        except BackendUnavailableError as exc:
            log.warning("payload not readable", error=str(exc))
            await self._fail(f"payload not readable: {exc}", retryable=True)
            return
        # A cancel left over from an earlier attempt never gets here: the claim decides CANCEL for
        # it (Job.decide_claim); one requested after the claim reaches the handler via the bus or
        # the worker's re-read (runtime._recheck_cancels) and the heartbeat.
        if self.interrupt is None:
            log.debug("job started")
            task = self._task = asyncio.create_task(
                _call(job_type, self.ctx, payload, self.job.timeout_seconds)
            )
            heartbeat = asyncio.create_task(self._heartbeat(job_type.lease_for(self.service.settings)))
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                heartbeat.cancel()
                with suppress(asyncio.CancelledError):
                    await heartbeat
        await self._settle()

    async def _heartbeat(self, visibility: float) -> None:
        """Every third of the lease: extend it and the message's visibility, and look for a cancel.

        The claim took the queue's lease (``JOBPULSE_VISIBILITY_TIMEOUT``); a type with its own
        lease gets it at once, by a first beat.
        """
        interval = visibility / 3
        claim = self.ctx.claim
        wait = 0.0 if visibility != self.service.settings.visibility_timeout else interval
        while True:
            await asyncio.sleep(wait)
            wait = interval
            try:
                job = await self.ctx.write(
                    lambda current: self.service.heartbeat(claim, visibility, current=current)
                )
            except (LeaseLostError, JobNotFoundError):
                log.warning("lease lost; stopping the handler")
                self.stop(Interrupt.LEASE_LOST)
                return
            except (BackendUnavailableError, ConflictError) as exc:
                log.warning("heartbeat not written; trying again", error=str(exc))
                continue
            try:
                # The lease is what keeps the job ours: a queue slow to answer (or unreachable, with
                # its retries) must not hold up the next lease extension, or the lease lapses while
                # the handler still runs and another worker starts the job too.
                async with asyncio.timeout(interval):
                    await self.service.queue.extend(self.delivery, visibility)
            except (BackendUnavailableError, TimeoutError) as exc:
                log.warning("message visibility not extended", error=str(exc) or "no answer in time")
            if job.cancel_requested:
                log.info("cancel requested; stopping the handler")
                self.stop(Interrupt.CANCEL)

    async def _settle(self) -> None:
        """Write what the run came to, then act on the message accordingly."""
        task, interrupt = self._task, self.interrupt
        if interrupt is Interrupt.LEASE_LOST:
            await self.ctx.close()
            log.warning("attempt abandoned: the lease was lost")
        elif interrupt is Interrupt.CANCEL:
            await self.ctx.close()
            await self.ctx.write(
                lambda current: self.service.finish_cancelled(
                    self.ctx.claim, current=current, ack=self.delivery
                )
            )
            log.info("job cancelled")
        elif interrupt is Interrupt.SHUTDOWN and (task is None or task.cancelled()):
            await self._give_back()
        elif task is None:
            raise AssertionError("an attempt settled without running or being interrupted")
        elif task.cancelled():
            await self._fail("the handler was cancelled from within", retryable=True)
        elif (exc := task.exception()) is not None:
            await self._failed(exc)
        else:
            await self._succeeded(task.result())

    async def _succeeded(self, result: JSONValue) -> None:
        try:
            encoded = orjson.dumps(result)
        except TypeError as exc:
            await self._fail(f"the handler's result is not JSON-serialisable: {exc}", retryable=False)
            return
        if len(encoded) > MAX_RESULT_BYTES:
            message = f"the handler's result is {len(encoded)} bytes; the limit is {MAX_RESULT_BYTES}"
            await self._fail(message, retryable=False)
            return
        plain: JSONValue = orjson.loads(encoded)  # what the store keeps: plain JSON, no datetimes etc.
        last_report = await self.ctx.progress_for_completion()
        await self.ctx.close()
        await self.ctx.write(
            lambda current: self.service.complete(
                self.ctx.claim, plain, current=current, ack=self.delivery, progress_message=last_report
            )
        )
        log.info("job completed")

    async def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, Retry):
            await self._fail(str(exc), retryable=True, retry_delay=exc.delay)
        elif isinstance(exc, PermanentError):
            await self._fail(str(exc) or type(exc).__name__, retryable=False)
        elif isinstance(exc, JobTimeoutError):
            await self._fail(str(exc), retryable=True)
        else:
            log.warning("handler raised", exc_info=exc)
            await self._fail(f"{type(exc).__name__}: {exc}", retryable=True)

    async def _fail(self, message: str, *, retryable: bool, retry_delay: float | None = None) -> None:
        await self.ctx.flush()  # a failed job shows how far it got (rare, so the extra write is cheap)
        await self.ctx.close()
        job = await self.ctx.write(
            lambda current: self.service.fail_attempt(
                self.ctx.claim, message, retryable=retryable, retry_delay=retry_delay, current=current
            )
        )
        if job.status is JobStatus.PENDING:
            delay = seconds_until(self.service, job.run_at)
            await self.service.settle(self.delivery, MessageFate.RELEASE, delay)
            log.info("attempt failed; will retry", error=message, retry_in_seconds=round(delay, 3))
        else:
            await self.service.settle(self.delivery, MessageFate.DEAD_LETTER)
            log.warning("job failed", error=message)

    async def _give_back(self) -> None:
        await self.ctx.close()
        reason = Interrupt.SHUTDOWN.value
        await self.ctx.write(lambda current: self.service.release(self.ctx.claim, reason, current=current))
        await self.service.settle(self.delivery, MessageFate.RELEASE)
        log.info("job given back for another worker")
