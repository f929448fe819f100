"""``ScheduleService``: create and change schedules, and take their due ticks (DESIGN.md §7).

A tick T is taken in two writes. First the tick's job is submitted with an idempotency key
derived from (schedule id, T), so a second submission of the same tick, by another process or
after a crash, returns the job the first made. Then ``next_run_at`` moves past T in a conditional
write on the schedule's version (pause and every edit bump it). Whoever loses that write re-reads
and decides again; whatever they submit for T is the same job.

A tick more than ``schedule_misfire_grace_seconds`` old when taken was missed (every process was
down, or the store was): ``catchUp`` false skips it, true submits one job for all missed ticks
(keyed by the first of them, so processes that disagree on which was last still make one job).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from core.cursors import from_micros, to_micros
from core.errors import ConflictError, JobNotFoundError, UserFacingError, ValidationError
from core.group_commit import GroupCommit
from core.jobcopy import slotted_copier
from core.models import Job, JobId, JSONObject, JSONValue, Principal, new_job_id
from core.schedules.cron import CronSpec
from core.schedules.model import OverlapPolicy, Schedule, ScheduleStore
from core.service import JobService
from core.submission import SubmitRequest, new_job

__all__ = ["ScheduleInput", "SchedulePage", "ScheduleService", "TickOutcome", "job_request"]

log = structlog.get_logger("jobpulse.scheduler")

MAX_NAME = 200
MAX_WRITE_RETRIES = 20
ADVANCE_BATCH = 500
#: schedules planned, submitted and advanced together in a round; the event loop is given back
#: between chunks (~100 ticks is a few milliseconds of CPU)
ROUND_CHUNK = 50

_copy_schedule = slotted_copier(Schedule)


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    """What a client asks for; ``job`` is a ``SubmitJobInput`` as JSON (camelCase keys)."""

    name: str
    cron: str
    job: JSONObject
    timezone: str = "UTC"
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catch_up: bool = False


@dataclass(frozen=True, slots=True)
class SchedulePage:
    schedules: list[Schedule]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What taking one tick did: ``fired`` a job, ``skipped`` (overlap), or ``missed`` (catchUp off)."""

    schedule: Schedule
    tick: datetime
    outcome: str
    lateness_seconds: float
    job: Job | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A due tick decided: what it fires (``request``), and where ``nextRunAt`` goes after it."""

    schedule: Schedule
    tick: datetime
    following: datetime | None
    kind: str
    lateness: float
    request: SubmitRequest | None


def _int(template: JSONObject, key: str) -> int | None:
    value = template.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{key} must be a number", field=f"job.{key}")
    return int(value)


def job_request(
    template: JSONObject, schedule_id: str | None = None, key: str | None = None
) -> SubmitRequest:
    """The ``SubmitRequest`` a schedule's job template makes (its own idempotency key is ignored)."""
    job_type = template.get("type")
    if not isinstance(job_type, str):
        raise ValidationError("job.type is required", field="job.type")
    payload: JSONValue = template.get("payload", {})
    concurrency_key = template.get("concurrencyKey")
    if concurrency_key is not None and not isinstance(concurrency_key, str):
        raise ValidationError("concurrencyKey must be a string", field="job.concurrencyKey")
    return SubmitRequest(
        type=job_type,
        payload=payload,
        priority=_int(template, "priority") or 0,
        delay_seconds=_int(template, "delaySeconds") or 0,
        max_attempts=_int(template, "maxAttempts"),
        timeout_seconds=_int(template, "timeoutSeconds"),
        idempotency_key=key,
        expires_in_seconds=_int(template, "expiresInSeconds"),
        schedule_id=schedule_id,
        concurrency_key=concurrency_key,
    )


def tick_key(schedule_id: str, tick: datetime) -> str:
    """The idempotency key of a tick's job: one job per (schedule, tick), whoever submits it."""
    return f"schedule:{schedule_id}:{to_micros(tick)}"


class ScheduleService:
    """Schedules, owner-scoped like jobs; ``run_due`` takes the due ticks (any number of processes)."""

    def __init__(
        self, store: ScheduleStore, jobs: JobService, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock or jobs.clock
        self.grace = timedelta(seconds=jobs.settings.schedule_misfire_grace_seconds)
        #: called with each taken tick (metrics)
        self.tick_listeners: list[Callable[[TickOutcome], None]] = []
        self._specs: dict[tuple[str, str], CronSpec] = {}
        #: concurrent ticks' advances (nextRunAt), coalesced into one ``update_many``
        self._advances: GroupCommit[None, tuple[Schedule, int], Schedule | None] = GroupCommit(
            self._advance_batch, ADVANCE_BATCH
        )

    def spec(self, cron: str, timezone: str) -> CronSpec:
        """The parsed expression (cached: the loop steps the same few expressions over and over)."""
        key = (cron, timezone)
        spec = self._specs.get(key)
        if spec is None:
            if len(self._specs) > 10_000:
                self._specs.clear()
            spec = self._specs[key] = CronSpec(cron, timezone)
        return spec

    # -- client actions -------------------------------------------------------------------
    def _check(self, owner: str, value: ScheduleInput) -> tuple[ScheduleInput, CronSpec]:
        """The input, normalised, and its cron; or the first thing wrong with it (nothing stored)."""
        name = value.name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise ValidationError(f"name must be 1 to {MAX_NAME} characters", field="name")
        spec = self.spec(value.cron, value.timezone)
        template = dict(value.job)
        template.pop("idempotencyKey", None)
        if template.pop("dependsOn", None):
            # Each tick's job would wait for the same jobs, long finished after the first tick.
            raise ValidationError("a schedule's job cannot depend on other jobs", field="job.dependsOn")
        try:
            new_job(self.jobs.registry, self.jobs.settings, owner, job_request(template), self.clock())
        except UserFacingError as exc:
            field = exc.field or "payload"
            exc.field = field if field.startswith("job.") else f"job.{field}"
            raise
        return replace(value, name=name, cron=spec.cron, job=template), spec

    async def _visible(self, principal: Principal, schedule_id: str) -> Schedule:
        schedule = await self.get(principal, schedule_id)
        if schedule is None:
            raise JobNotFoundError(f"schedule {schedule_id} not found", field="id")
        return schedule

    async def create(self, principal: Principal, value: ScheduleInput) -> Schedule:
        """A new schedule, its first tick the cron's next after now."""
        value, spec = self._check(principal.subject, value)
        now = self.clock()
        schedule = Schedule(
            id=new_job_id(),
            name=value.name,
            owner=principal.subject,
            cron=value.cron,
            timezone=value.timezone,
            job=value.job,
            overlap=value.overlap,
            catch_up=value.catch_up,
            next_run_at=spec.next_after(now),
            created_at=now,
            updated_at=now,
        )
        if not await self.store.insert(schedule):
            raise ValidationError(f"you already have a schedule named {value.name!r}", field="name")
        return schedule

    async def _change(
        self, principal: Principal, schedule_id: str, change: Callable[[Schedule], Schedule]
    ) -> Schedule:
        """``change`` as a conditional write on the version, re-read and redone on conflict."""
        for _ in range(MAX_WRITE_RETRIES):
            current = await self._visible(principal, schedule_id)
            new = replace(change(current), version=current.version + 1, updated_at=self.clock())
            written = await self.store.update(new, current.version)
            if written is not None:
                return written
        raise ConflictError(f"schedule {schedule_id} kept changing")

    async def update(self, principal: Principal, schedule_id: str, value: ScheduleInput) -> Schedule:
        """New settings; the next tick is recomputed from now when the cron or time zone changed."""
        current = await self._visible(principal, schedule_id)
        value, spec = self._check(current.owner, value)

        def change(schedule: Schedule) -> Schedule:
            timing = (schedule.cron, schedule.timezone) != (value.cron, value.timezone)
            return replace(
                schedule,
                name=value.name,
                cron=value.cron,
                timezone=value.timezone,
                job=value.job,
                overlap=value.overlap,
                catch_up=value.catch_up,
                next_run_at=spec.next_after(self.clock()) if timing else schedule.next_run_at,
            )

        return await self._change(principal, schedule_id, change)

    async def pause(self, principal: Principal, schedule_id: str) -> Schedule:
        """No tick fires until resumed (the flag is in every tick's conditional write)."""
        return await self._change(principal, schedule_id, lambda s: replace(s, paused=True))

    async def resume(self, principal: Principal, schedule_id: str) -> Schedule:
        """Ticks fire again from the next one after now; the ones while paused never do."""

        def change(schedule: Schedule) -> Schedule:
            spec = self.spec(schedule.cron, schedule.timezone)
            return replace(schedule, paused=False, next_run_at=spec.next_after(self.clock()))

        return await self._change(principal, schedule_id, change)

    async def delete(self, principal: Principal, schedule_id: str) -> Schedule:
        """The schedule as it was; its jobs stay."""
        schedule = await self._visible(principal, schedule_id)
        if not await self.store.delete(schedule.id):
            raise JobNotFoundError(f"schedule {schedule_id} not found", field="id")
        return schedule

    async def trigger(self, principal: Principal, schedule_id: str) -> Job:
        """One job now, outside the cron (it becomes the schedule's last job)."""
        schedule = await self._visible(principal, schedule_id)
        owner = Principal(schedule.owner)
        job = await self.jobs.submit(owner, job_request(schedule.job, schedule.id))
        now = self.clock()
        await self._change(principal, schedule_id, lambda s: replace(s, last_job_id=job.id, last_run_at=now))
        return job

    # -- reading --------------------------------------------------------------------------
    async def get(self, principal: Principal, schedule_id: str) -> Schedule | None:
        """The schedule, or ``None`` if it does not exist or the caller may not see it."""
        schedule = await self.store.get(schedule_id)
        if schedule is None or not (principal.is_admin or schedule.owner == principal.subject):
            return None
        return schedule

    async def page(self, principal: Principal, first: int, after: str | None) -> SchedulePage:
        """Oldest first; ``after`` is a ``cursor`` of an earlier page."""
        if not 0 <= first <= 500:
            raise ValidationError("first must be between 0 and 500", field="first")
        owner = None if principal.is_admin else principal.subject
        position = decode_cursor(after) if after else None
        schedules = await self.store.list(owner, first + 1, position)
        return SchedulePage(schedules[:first], len(schedules) > first)

    async def count(self, principal: Principal) -> int:
        return await self.store.count(None if principal.is_admin else principal.subject)

    # -- the ticks ------------------------------------------------------------------------
    async def run_due(self, limit: int = 1000) -> list[TickOutcome]:
        """Take every due tick (up to ``limit`` schedules); what each did.

        In bulk, ``ROUND_CHUNK`` schedules at a time: each schedule's next tick is decided, their jobs
        submitted with one ``submit_many`` per owner, and the advances written with one
        ``update_many``. A schedule whose advance lost (another process, an edit) is then taken again
        on its own (``take``). The chunks start one event-loop turn apart and run side by side: a
        round of 1,000 costs tens of milliseconds of CPU, which the API sharing the loop must not
        wait for in one piece, and their writes still share commits.
        """
        now = self.clock()
        due = await self.store.due(now, limit)
        chunks: list[asyncio.Future[list[TickOutcome]]] = []
        try:
            for start in range(0, len(due), ROUND_CHUNK):
                chunks.append(asyncio.ensure_future(self._run_chunk(due[start : start + ROUND_CHUNK], now)))
                # The chunk's planning and encoding run now, before the next one's; a request that
                # came meanwhile is answered between them. Their writes meet in the group commit.
                await asyncio.sleep(0)
            answers = await asyncio.gather(*chunks, return_exceptions=True)
        except BaseException:
            for chunk in chunks:
                chunk.cancel()
            raise
        outcomes: list[TickOutcome] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer  # the other chunks' ticks are taken; this one's are taken next round
            outcomes.extend(answer)
        return outcomes

    async def _run_chunk(self, due: list[Schedule], now: datetime) -> list[TickOutcome]:
        """``run_due``'s work for some of the round's due schedules: plan, submit, advance."""
        last_ids = [s.last_job_id for s in due if s.overlap is OverlapPolicy.SKIP and s.last_job_id]
        last_jobs = await self.jobs.store.get_many(last_ids) if last_ids else {}
        plans = [self._plan(s, now, last_jobs.get(s.last_job_id) if s.last_job_id else None) for s in due]
        jobs = await self._submit_all(plans)
        advances = [self._advanced(plan, now, job) for plan, job in zip(plans, jobs, strict=True)]
        written = await self.store.update_many(
            [(new, plan.schedule.version) for plan, new in zip(plans, advances, strict=True)]
        )
        outcomes: list[TickOutcome] = []
        again: list[Schedule] = []
        lost: list[str] = []
        for plan, job, answer in zip(plans, jobs, written, strict=True):
            if isinstance(answer, BaseException):
                log.warning("schedule advance failed", schedule_id=plan.schedule.id, error=str(answer))
            elif answer is None:  # lost the write: someone else moved it; read and decide again
                lost.append(plan.schedule.id)
            else:
                outcome = TickOutcome(answer, plan.tick, self._kind(plan, job), plan.lateness, job)
                outcomes.append(self._took(outcome))
                if answer.next_run_at is not None and answer.next_run_at <= now:
                    again.append(answer)  # more than one tick due (a catch-up, then the current one)
        if lost:
            again.extend((await self.store.get_many(lost)).values())
        for taken in await asyncio.gather(*(self.take(s, now, last_jobs) for s in again)):
            outcomes.extend(taken)
        return outcomes

    def _took(self, outcome: TickOutcome) -> TickOutcome:
        for listener in self.tick_listeners:
            listener(outcome)
        return outcome

    async def take(
        self, schedule: Schedule, now: datetime, last_jobs: dict[JobId, Job] | None = None
    ) -> list[TickOutcome]:
        """Take ``schedule``'s ticks due at ``now``, one after the other; re-read after a lost write."""
        outcomes: list[TickOutcome] = []
        current: Schedule | None = schedule
        known = dict(last_jobs or {})
        for _ in range(MAX_WRITE_RETRIES):
            if current is None or current.paused or current.next_run_at is None or current.next_run_at > now:
                return outcomes
            last = known.get(current.last_job_id) if current.last_job_id else None
            if last is None and current.last_job_id and current.overlap is OverlapPolicy.SKIP:
                last = await self.jobs.store.get(current.last_job_id)
            plan = self._plan(current, now, last)
            [job] = await self._submit_all([plan])
            new = self._advanced(plan, now, job)
            written = await self._advances.run(None, (new, current.version))
            if written is None:  # lost the write: someone else moved it; read and decide again
                current = await self.store.get(current.id)
                continue
            outcomes.append(
                self._took(TickOutcome(written, plan.tick, self._kind(plan, job), plan.lateness, job))
            )
            current = written
            if job is not None:
                known[job.id] = job
        return outcomes

    def _plan(self, schedule: Schedule, now: datetime, last: Job | None) -> _Plan:
        """What taking ``schedule``'s due tick means at ``now``, given its last job."""
        tick = schedule.next_run_at
        assert tick is not None
        spec = self.spec(schedule.cron, schedule.timezone)
        missed = now - tick > self.grace
        following = spec.next_after(now - self.grace) if missed else spec.next_after(tick)
        kind = "fired" if schedule.catch_up or not missed else "missed"
        if (
            kind == "fired"
            and schedule.overlap is OverlapPolicy.SKIP
            and last is not None
            and not last.is_terminal
        ):
            kind = "skipped"
        request = None
        if kind == "fired":
            request = job_request(schedule.job, schedule.id, tick_key(schedule.id, tick))
        return _Plan(schedule, tick, following, kind, (now - tick).total_seconds(), request)

    async def _submit_all(self, plans: list[_Plan]) -> list[Job | None]:
        """Each plan's job (``None``: none fired, or it was refused); one ``submit_many`` per owner."""
        jobs: list[Job | None] = [None] * len(plans)
        by_owner: dict[str, list[int]] = {}
        for i, plan in enumerate(plans):
            if plan.request is not None:
                by_owner.setdefault(plan.schedule.owner, []).append(i)
        size = self.jobs.settings.max_batch_size
        for owner, indexes in by_owner.items():
            for start in range(0, len(indexes), size):
                chunk = indexes[start : start + size]
                requests = [request for i in chunk if (request := plans[i].request) is not None]
                answers = await self.jobs.submit_many(Principal(owner), requests)
                for i, answer in zip(chunk, answers, strict=True):
                    if isinstance(answer, UserFacingError):
                        # The job type went away or changed its schema since: the tick passes, logged.
                        log.warning(
                            "schedule tick refused", schedule_id=plans[i].schedule.id, error=str(answer)
                        )
                    else:
                        jobs[i] = answer
        return jobs

    @staticmethod
    def _kind(plan: _Plan, job: Job | None) -> str:
        return "refused" if plan.kind == "fired" and job is None else plan.kind

    @staticmethod
    def _advanced(plan: _Plan, now: datetime, job: Job | None) -> Schedule:
        """The schedule after its tick: the next tick, and the job it made (if any)."""
        schedule = plan.schedule
        return _copy_schedule(
            schedule,
            next_run_at=plan.following,
            last_run_at=now if job is not None else schedule.last_run_at,
            last_job_id=job.id if job is not None else schedule.last_job_id,
            version=schedule.version + 1,
            updated_at=now,
        )

    async def _advance_batch(
        self, _: None, items: list[tuple[Schedule, int]]
    ) -> list[Schedule | None | BaseException]:
        """``_advances``' batch: the ticks' conditional writes that came together, as one store write."""
        return await self.store.update_many(items)

    async def next_due(self) -> datetime | None:
        return await self.store.next_due()


def encode_cursor(schedule: Schedule) -> str:
    """An opaque listing position after ``schedule``."""
    return f"{to_micros(schedule.created_at)}:{schedule.id}"


def decode_cursor(value: str) -> tuple[datetime, str]:
    try:
        micros, schedule_id = value.split(":", 1)
        return from_micros(int(micros)), schedule_id
    except ValueError as exc:
        raise ValidationError("invalid cursor", field="after") from exc
