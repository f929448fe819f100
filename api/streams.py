"""The two live streams behind the subscriptions, with no gap and no duplicate (DESIGN.md §5).

Each subscribes to the bus first (the subscription buffers from then on), then reads the store,
emits that, then drains the bus, dropping anything at or below the last version already emitted
for its job. On ``Resync`` it re-reads the store from where it was. ``caller`` is asked for the
principal on every event, so an expired token or a lost right ends the stream.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from typing import TypeVar

from core.cursors import EventCursor, to_micros
from core.errors import JobNotFoundError
from core.models import Job, JobEvent, JobId, JSONObject, Principal
from core.ports import ALL_EVENTS, JobStore, Resync, job_topic, owner_topic
from core.service import JobService

__all__ = ["EventDeduplicator", "job_event_feed", "job_updates"]

#: events read from the store per query while replaying
REPLAY_PAGE = 200
#: a resync re-reads this far behind the newest event emitted: events of different jobs can be
#: published in a slightly different order than their cursors, and the store orders by cursor
RESYNC_WINDOW_MICROS = 5_000_000
#: jobs whose last emitted version a feed remembers (least recently seen forgotten first)
DEDUP_MEMORY = 10_000

Caller = Callable[[], Principal]
T = TypeVar("T")


def _not_found(job_id: JobId) -> JobNotFoundError:
    return JobNotFoundError(f"job {job_id} not found", field="id")


async def _stored_changes(store: JobStore, job_id: JobId, after_version: int) -> AsyncIterator[Job]:
    """The job as of each stored event after ``after_version``, then as it is now if newer."""
    cursor = EventCursor(0, job_id, after_version)
    newest = after_version
    while True:
        events = await store.list_events(after=cursor, limit=REPLAY_PAGE, job_id=job_id)
        for event in events:
            newest = max(newest, event.version)
            yield event.job
        if len(events) < REPLAY_PAGE:
            break
        cursor = EventCursor.of(events[-1])
    # A store that writes the event after the job (MongoDB) may have lost the event of the latest write.
    current = await store.get(job_id)
    if current is not None and current.version > newest:
        yield current


async def job_updates(
    service: JobService, caller: Caller, job_id: JobId, render: Callable[[Job], T]
) -> AsyncGenerator[T, None]:
    """The job as it is now, then every change in version order (each through ``render``); ends
    after a terminal status. The resolver returns this generator itself, so no frame of its own
    (nor the resolve info it would hold) stays alive per open subscription."""
    async with service.bus.subscribe([job_topic(job_id)]) as subscription:
        snapshot = await service.get(caller(), job_id)
        if snapshot is None:
            raise _not_found(job_id)
        yield render(snapshot)
        if snapshot.is_terminal:
            return
        payload, last = snapshot.payload, snapshot.version
        del snapshot  # between events an open subscription keeps only the payload and the version
        # A live event is handled inline (this runs per event per subscriber); a Resync streams
        # the stored changes through the same checks.
        async for message in subscription:
            if isinstance(message, JobEvent):
                job = message.job
                if message.job_id != job_id or job.version <= last:
                    continue
                yield render(_visible(caller, job_id, job, payload))
                last = job.version
                if job.is_terminal:
                    return
            elif isinstance(message, Resync):
                async for job in _stored_changes(service.store, job_id, last):
                    if job.version <= last:
                        continue
                    yield render(_visible(caller, job_id, job, payload))
                    last = job.version
                    if job.is_terminal:
                        return


def _visible(caller: Caller, job_id: JobId, job: Job, payload: JSONObject | None) -> Job:
    """``job`` with the snapshot's payload if the caller may (still) see it; not found otherwise."""
    if not caller().can_see(job):
        raise _not_found(job_id)
    # Events carry no payload; it never changes, so the snapshot's is the job's.
    return replace(job, payload=payload)


class EventDeduplicator:
    """Decides whether an event is new to a feed: per job by version, and after the feed's start."""

    def __init__(self, start: EventCursor | None, floor: EventCursor) -> None:
        self.start = start
        #: where a resync re-reads from when nothing has been emitted yet
        self.floor = floor
        self.newest: EventCursor | None = None
        self._versions: OrderedDict[JobId, int] = OrderedDict()
        if start is not None:
            self._versions[start.job_id] = start.version

    def accept(self, event: JobEvent) -> bool:
        """True (and remembered) if the feed has not emitted this event nor anything after it."""
        last = self._versions.get(event.job_id)
        cursor = EventCursor.of(event)
        if last is not None:
            if event.version <= last:
                return False
        elif self.start is not None and cursor <= self.start:
            return False  # before the resume point: the client has it already
        self._versions[event.job_id] = event.version
        self._versions.move_to_end(event.job_id)
        while len(self._versions) > DEDUP_MEMORY:
            self._versions.popitem(last=False)
        if self.newest is None or cursor > self.newest:
            self.newest = cursor
        return True

    def resync_point(self) -> EventCursor:
        """Where to re-read the store from after missed messages (a little behind, deduplicated)."""
        if self.newest is None:
            return self.floor
        behind = EventCursor(self.newest.at_micros - RESYNC_WINDOW_MICROS, "", 0)
        return max(behind, self.floor)


async def job_event_feed(
    service: JobService,
    caller: Caller,
    render: Callable[[JobEvent], T],
    *,
    job_id: JobId | None,
    type: str | None,
    after: str | None,
) -> AsyncGenerator[T, None]:
    """Events the caller may see (optionally of one job or type), each through ``render``: stored
    ones after ``after``, then live."""
    principal = caller()
    start = EventCursor.decode(after) if after else None
    if job_id is not None:
        if await service.get(principal, job_id) is None:
            raise _not_found(job_id)
        topics = [job_topic(job_id)]
    elif principal.is_admin:
        topics = [ALL_EVENTS]
    else:
        topics = [owner_topic(principal.subject)]
    owner = None if principal.is_admin else principal.subject

    def wanted(event: JobEvent) -> bool:
        if job_id is not None and event.job_id != job_id:
            return False
        if type is not None and event.type != type:
            return False
        return caller().can_see(event.job)

    async def replay(cursor: EventCursor) -> AsyncIterator[JobEvent]:
        while True:
            events = await service.store.list_events(
                after=cursor, limit=REPLAY_PAGE, job_id=job_id, type=type, owner=owner
            )
            for event in events:
                if wanted(event) and seen.accept(event):
                    yield event
            if len(events) < REPLAY_PAGE:
                return
            cursor = EventCursor.of(events[-1])

    async with service.bus.subscribe(topics) as subscription:
        subscribed_at = EventCursor(to_micros(service.clock()), "", 0)
        seen = EventDeduplicator(start, floor=start if start is not None else subscribed_at)
        if start is not None:
            async for event in replay(start):
                yield render(event)
        async for message in subscription:
            if isinstance(message, Resync):
                async for event in replay(seen.resync_point()):
                    yield render(event)
            elif isinstance(message, JobEvent) and wanted(message) and seen.accept(message):
                yield render(message)
