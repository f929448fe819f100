"""``FlowControl``: a process's view of every job type's limits, and the changes made to them.

The limits are read from the ``ControlStore`` and kept for ``REFRESH_SECONDS``; a change made
anywhere publishes ``ControlsChanged`` on the bus, which makes every worker re-read at once
(``invalidate``), so a pause stops new starts everywhere well within a second, and within
``REFRESH_SECONDS`` should the message be missed. The embedded store does not even need that:
it reads the record in the claim's own transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

import structlog

from core.errors import JobNotFoundError, ValidationError
from core.flow_control import (
    ControlStore,
    HeldError,
    HoldReason,
    Overrides,
    TypeLimits,
    apply_overrides,
    declared_limits,
)
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobId, JobStatus, JSONValue
from core.ports import ControlsChanged, EventBus

__all__ = ["REFRESH_SECONDS", "FlowControl", "HeldListener"]

log = structlog.get_logger("jobpulse.controls")

#: how old this process's copy of the control records may grow before a claim re-reads them
REFRESH_SECONDS = 1.0
#: the most a limit may be set to (a bigger one is a mistake, not a limit)
MAX_LIMIT = 1_000_000
MAX_PERIOD_SECONDS = 86_400.0

HeldListener = Callable[[str, HoldReason], None]

#: ``setJobTypeLimits``' changes: a field left out is absent, one sent as null removes that limit
LimitChanges = dict[str, int | float | None]


def _positive(field: str, value: float | None, high: float) -> None:
    if value is not None and not 0 < value <= high:
        raise ValidationError(f"{field} must be above 0 and at most {high:g}, got {value}", field=field)


class FlowControl:
    """Limits by job type: read (cached), changed (stored, then announced), and taken by claims."""

    def __init__(self, store: ControlStore, registry: JobTypeRegistry, bus: EventBus) -> None:
        self.store = store
        self.registry = registry
        self.bus = bus
        self.held_listeners: list[HeldListener] = []
        self._overrides: dict[str, Overrides] = {}
        self._read_at = float("-inf")
        self._reading: asyncio.Lock | None = None

    def declared(self, type: str) -> TypeLimits:
        """A type's defaults (no limits for a type this process does not know)."""
        return declared_limits(self.registry.get(type)) if type in self.registry else TypeLimits()

    def cached(self, type: str) -> TypeLimits:
        """A type's limits as last read (no I/O)."""
        return apply_overrides(self.declared(type), self._overrides.get(type))

    async def limits(self, type: str) -> TypeLimits:
        """A type's limits, read again when the copy is older than ``REFRESH_SECONDS``."""
        if time.monotonic() - self._read_at > REFRESH_SECONDS:
            await self.refresh()
        return self.cached(type)

    async def refresh(self) -> None:
        """Read every type's record now (one read at a time; waiters share it)."""
        if self._reading is None:
            self._reading = asyncio.Lock()
        started = time.monotonic()
        async with self._reading:
            if self._read_at >= started:
                return  # read by someone else while we waited
            overrides = await self.store.read_overrides()
            self._overrides, self._read_at = overrides, time.monotonic()

    def invalidate(self) -> None:
        """Read again before the next claim (a ``ControlsChanged`` arrived)."""
        self._read_at = float("-inf")

    # -- changes (admin) ------------------------------------------------------------------------
    def _known(self, type: str) -> None:
        if type not in self.registry:
            raise JobNotFoundError(f"job type {type!r} not found", field="type")

    async def pause(self, type: str) -> TypeLimits:
        """No new starts of ``type`` anywhere; running jobs finish; submits are still accepted."""
        return await self._change(type, {"paused": True})

    async def resume(self, type: str) -> TypeLimits:
        return await self._change(type, {"paused": False})

    async def set_limits(self, type: str, changes: LimitChanges) -> TypeLimits:
        """Override ``type``'s limits: keys ``concurrency``, ``concurrency_per_key``, ``rate_limit``,
        ``rate_period_seconds`` (absent: unchanged; ``None``: that limit removed)."""
        self._known(type)
        _positive("concurrency", changes.get("concurrency"), MAX_LIMIT)
        _positive("concurrencyPerKey", changes.get("concurrency_per_key"), MAX_LIMIT)
        _positive("rateLimit", changes.get("rate_limit"), MAX_LIMIT)
        _positive("ratePeriodSeconds", changes.get("rate_period_seconds"), MAX_PERIOD_SECONDS)
        for name in ("concurrency", "concurrency_per_key", "rate_limit"):
            value = changes.get(name)
            if value is not None and value != int(value):
                raise ValidationError(f"{name} must be a whole number", field=name)
        overrides: Overrides = {}
        if "concurrency" in changes:
            value = changes["concurrency"]
            overrides["concurrency"] = None if value is None else int(value)
        if "concurrency_per_key" in changes:
            value = changes["concurrency_per_key"]
            overrides["concurrency_per_key"] = None if value is None else int(value)
        if "rate_limit" in changes or "rate_period_seconds" in changes:
            overrides["rate_limit"] = self._rate(type, changes)
        return await self._change(type, overrides)

    def _rate(self, type: str, changes: LimitChanges) -> JSONValue:
        """The stored rate: ``[limit, period]``, or ``None`` (removed) when ``rateLimit`` is null."""
        current = self.cached(type).rate_limit
        if "rate_limit" in changes and changes["rate_limit"] is None:
            return None
        limit = changes.get("rate_limit") or (current.limit if current else None)
        period = changes.get("rate_period_seconds") or (current.period_seconds if current else 1.0)
        if limit is None:
            raise ValidationError("ratePeriodSeconds needs a rateLimit", field="rateLimit")
        return [int(limit), float(period)]

    async def _change(self, type: str, overrides: Overrides) -> TypeLimits:
        self._known(type)
        written = await self.store.write_overrides(type, overrides)
        self._overrides = {**self._overrides, type: written}
        try:
            await self.bus.publish_control(ControlsChanged(type))
        except Exception as exc:  # stored: every process re-reads within REFRESH_SECONDS
            log.warning("controls change not published", type=type, error=repr(exc))
        return self.cached(type)

    # -- claims --------------------------------------------------------------------------------
    def note_held(self, type: str, reason: HoldReason) -> None:
        for listener in self.held_listeners:
            try:
                listener(type, reason)
            except Exception:
                log.exception("held listener failed", type=type)

    async def take(self, job: Job, lease_until: datetime, now: datetime) -> tuple[bool, float | None]:
        """Before a claim of ``job`` (stores that do not hold limits in the claim): take its slots
        and token. Whether it took something to give back, and the wall time (``time.time()``) its
        rate token was given, if it took one; raises ``HeldError``."""
        limits = await self.limits(job.type)
        if not limits.limits(job):
            return False, None
        return True, await self.store.take(job, limits, lease_until, now)

    def may_hold(self, job: Job) -> bool:
        """Whether ``job``'s claim may have taken slots (to be given back or extended)."""
        return not self.store.in_claim and (
            job.concurrency_key is not None or self.cached(job.type).concurrency is not None
        )

    async def wait_reason(self, job: Job, now: datetime) -> str | None:
        """Why a PENDING or WAITING job does not run yet: ``dependency``, ``runAt``, ``paused``,
        ``concurrency``, ``key``, ``rate``; ``None`` when nothing holds it back (it waits for a worker)."""
        if job.status is JobStatus.WAITING:
            return "dependency"
        if job.status is not JobStatus.PENDING:
            return None
        if job.run_at is not None and job.run_at > now:
            return "runAt"
        limits = await self.limits(job.type)
        if limits.paused:
            return "paused"
        concurrency = limits.concurrency
        if concurrency is not None and await self.store.running(job.type, None, now) >= concurrency:
            return "concurrency"
        key = job.concurrency_key
        if key is not None and await self.store.running(job.type, key, now) >= limits.concurrency_per_key:
            return "key"
        if limits.rate_limit is not None and await self.store.rate_spent(job.type, limits.rate_limit, now):
            return "rate"
        return None

    async def give_back(self, job_id: JobId) -> None:
        await self.store.give_back(job_id)

    async def extend(self, job_id: JobId, lease_until: datetime) -> None:
        await self.store.extend(job_id, lease_until)


__all__ += ["HeldError", "LimitChanges"]
