"""``SqliteJobStore``: the embedded job store, in the same database file as the embedded queue.

Because the queue table lives in the same file, a PENDING job that has no message yet gets one
in the very transaction that writes the job: submission and retry are atomic (DESIGN.md §2).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.backends.codec import (
    dumps,
    event_from_dict,
    event_to_dict,
    job_from_dict,
    job_to_dict,
    loads,
)
from core.backends.sqlite_db import (
    ENQUEUE,
    SqliteDatabase,
    ack_in,
    enqueue_in,
    hide_in,
    queue_row,
    visible_us,
)
from core.cursors import EventCursor, JobCursor, to_micros
from core.errors import BackendUnavailableError, ConflictError, JobNotFoundError
from core.flow_control import HeldError
from core.jobcopy import copy_job
from core.models import Job, JobEvent, JobEventKind, JobId, JobStatus, JSONValue
from core.ports import Decide, Delivery, JobFilter, StoreStats, TypeCounts

if TYPE_CHECKING:
    from core.backends.queue.sqlite import SqliteJobQueue

__all__ = ["SqliteJobStore"]

_JOB_COLUMNS = (
    "id, type, owner, status, version, created_us, updated_us, run_us, enqueued_us, started_us,"
    " completed_us, idempotency_key, doc"
)


def _row(job: Job, fields: dict[str, JSONValue] | None = None) -> tuple[Any, ...]:
    """The ``jobs`` row of ``job`` but its payload; ``fields``: its ``job_to_dict``, if made already."""
    doc = job_to_dict(job) if fields is None else fields
    return (
        job.id,
        job.type,
        job.owner,
        job.status.value,
        job.version,
        doc["created_at"],
        doc["updated_at"],
        doc["run_at"],
        doc["enqueued_at"],
        doc["started_at"],
        doc["completed_at"],
        job.idempotency_key,
        dumps(doc),
    )


_INSERT_JOB = f"INSERT INTO jobs ({_JOB_COLUMNS}, payload) VALUES ({', '.join('?' * 14)})"
_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (job_id, version, at_us, kind, type, owner, doc)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_IDEMPOTENT_HOLDER = (
    "SELECT doc, payload FROM jobs WHERE owner = ? AND idempotency_key = ? AND created_us >= ?"
    " ORDER BY created_us LIMIT 1"
)


def _event_row(event: JobEvent, job: dict[str, JSONValue] | None = None) -> tuple[Any, ...]:
    """The ``events`` row; ``job``: ``job_to_dict(event.job)``, if made already."""
    doc = event_to_dict(event, job)
    return (event.job_id, event.version, doc["at"], event.kind.value, event.type, event.owner, dumps(doc))


def _insert_event(conn: sqlite3.Connection, event: JobEvent) -> None:
    conn.execute(_INSERT_EVENT, _event_row(event))


def _filter_sql(filter: JobFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filter.statuses is not None:
        if not filter.statuses:
            return "0", []
        statuses = sorted(s.value for s in filter.statuses)
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    if filter.type is not None:
        clauses.append("type = ?")
        params.append(filter.type)
    if filter.owner is not None:
        clauses.append("owner = ?")
        params.append(filter.owner)
    if filter.created_after is not None:
        clauses.append("created_us > ?")
        params.append(to_micros(filter.created_after))
    if filter.created_before is not None:
        clauses.append("created_us < ?")
        params.append(to_micros(filter.created_before))
    if filter.schedule_id is not None:
        clauses.append("json_extract(CAST(doc AS TEXT), '$.schedule_id') = ?")
        params.append(filter.schedule_id)
    if filter.flow_id is not None:
        clauses.append("json_extract(CAST(doc AS TEXT), '$.flow_id') = ?")
        params.append(filter.flow_id)
    return (" AND ".join(clauses) or "1"), params


def _idempotent_holder(conn: sqlite3.Connection, owner: str, key: str, since_us: int) -> Job | None:
    """The first job ``owner`` submitted with ``key`` at or after ``since_us``, if any."""
    row = conn.execute(_IDEMPOTENT_HOLDER, (owner, key, since_us)).fetchone()
    return None if row is None else job_from_dict(loads(row[0]), loads(row[1]))


class SqliteJobStore:
    """Jobs and events in SQLite. Given ``queue`` (the SQLite queue on the same ``db``, handed over
    by ``open_backends``), it is also a ``TransactionalStore``: it enqueues PENDING jobs and claims
    and acks messages in its own transactions. Without one, it is a plain ``JobStore``."""

    def __init__(self, db: SqliteDatabase, *, queue: SqliteJobQueue | None = None) -> None:
        if queue is not None and queue.db is not db:
            raise ValueError("the store's transactions can only write the queue of its own database")
        self.db = db
        self.queue = queue
        #: called in the transaction of every write that ends a job (workflows: release its dependents)
        self.on_finished: Callable[[sqlite3.Connection, Job], None] | None = None
        #: called in the transaction of a claim's write, before it: raises ``HeldError`` to write nothing
        #: (flow control: ``core.backends.store.controls_sqlite``)
        self.claim_gate: Callable[[sqlite3.Connection, Job], None] | None = None

    async def ping(self) -> None:
        await self.db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """The database is closed by whoever opened it (it is shared with the queue)."""

    def _with_enqueued_at(self, job: Job) -> Job:
        """``job`` as it is written: a PENDING job without a message gets one in the same
        transaction, so its row and doc carry ``enqueued_at`` from the start (one write, one encode)."""
        if self.queue is None or job.status is not JobStatus.PENDING or job.enqueued_at is not None:
            return job
        return copy_job(job, enqueued_at=job.updated_at)

    def _enqueue(self, conn: sqlite3.Connection, job: Job, written: Job) -> None:
        """The queue row for ``written`` if ``_with_enqueued_at`` marked it (``job`` was not)."""
        if written is job:
            return
        enqueue_in(conn, job, visible_us(job))
        self.db.queue_changed()  # wakes a waiting in-process receive once committed

    async def insert(self, job: Job, event: JobEvent, idempotency_since: datetime) -> tuple[Job, bool]:
        since_us = to_micros(idempotency_since)

        def op(conn: sqlite3.Connection) -> tuple[Job, bool]:
            if job.idempotency_key is not None:
                holder = _idempotent_holder(conn, job.owner, job.idempotency_key, since_us)
                if holder is not None:
                    return holder, False
            written = self._with_enqueued_at(job)
            conn.execute(_INSERT_JOB, (*_row(written), dumps(job.payload)))
            _insert_event(conn, event)
            self._enqueue(conn, job, written)
            return written, True

        return await self.db.write(op)

    async def insert_many(
        self, items: Sequence[tuple[Job, JobEvent]], idempotency_since: datetime
    ) -> list[tuple[Job, bool]]:
        """One write op for the whole batch: a savepoint, one ``executemany`` per table, one commit.

        The rows are encoded here, on the caller's loop, before the op is queued: the writer
        thread (which every write of the process waits for) only looks up idempotency keys and
        runs the statements. A key an earlier item of the batch holds is answered from the batch.
        """
        since_us = to_micros(idempotency_since)
        prepared = [self._prepare(job, event) for job, event in items]

        def op(conn: sqlite3.Connection) -> list[tuple[Job, bool]]:
            answers: list[tuple[Job, bool]] = []
            held: dict[tuple[str, str], Job] = {}
            job_rows: list[tuple[Any, ...]] = []
            event_rows: list[tuple[Any, ...]] = []
            queue_rows: list[tuple[Any, ...]] = []
            for written, job_row, event_row, message in prepared:
                key = written.idempotency_key
                if key is not None:
                    holder = held.get((written.owner, key))
                    if holder is None:
                        holder = _idempotent_holder(conn, written.owner, key, since_us)
                    if holder is not None:
                        held[written.owner, key] = holder
                        answers.append((holder, False))
                        continue
                    held[written.owner, key] = written
                answers.append((written, True))
                job_rows.append(job_row)
                event_rows.append(event_row)
                if message is not None:
                    queue_rows.append(message)
            conn.executemany(_INSERT_JOB, job_rows)
            conn.executemany(_INSERT_EVENT, event_rows)
            if queue_rows:
                conn.executemany(ENQUEUE, queue_rows)
                self.db.queue_changed()  # wakes a waiting in-process receive once committed
            return answers

        return await self.db.write(op) if prepared else []

    def _prepare(
        self, job: Job, event: JobEvent
    ) -> tuple[Job, tuple[Any, ...], tuple[Any, ...], tuple[Any, ...] | None]:
        """``job`` as written, its jobs row, its event's row and its queue row (if enqueued here).

        The job's fields are made into a dict once: its event (``JobEvent.of`` it, the same id and
        version) carries the same job, and the row as written differs at most by ``enqueued_at``.
        """
        fields = job_to_dict(job)
        written = self._with_enqueued_at(job)
        doc, message = fields, None
        if written is not job:
            doc = {**fields, "enqueued_at": fields["updated_at"]}  # as ``_with_enqueued_at`` sets it
            message = queue_row(job, visible_us(job))
        same = event.job_id == job.id and event.version == job.version
        event_row = _event_row(event, fields if same else None)
        return written, (*_row(written, doc), dumps(job.payload)), event_row, message

    async def get(self, job_id: JobId) -> Job | None:
        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute("SELECT doc, payload FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else job_from_dict(loads(row[0]), loads(row[1]))

        return await self.db.read(op)

    async def get_many(self, job_ids: Sequence[JobId]) -> dict[JobId, Job]:
        ids = list(dict.fromkeys(job_ids))

        def op(conn: sqlite3.Connection) -> dict[JobId, Job]:
            found: dict[JobId, Job] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    f"SELECT doc, payload FROM jobs WHERE id IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                for doc, payload in rows:
                    job = job_from_dict(loads(doc), loads(payload))
                    found[job.id] = job
            return found

        return await self.db.read(op) if ids else {}

    def _update_in(
        self, conn: sqlite3.Connection, job: Job, expected_version: int, event: JobEvent | None
    ) -> Job | None:
        if (
            self.claim_gate is not None
            and job.status is JobStatus.PROCESSING
            and job.started_at == job.updated_at
        ):
            self.claim_gate(conn, job)  # a claim: it may be held back, and then writes nothing
        written = self._with_enqueued_at(job)
        row = _row(written)
        cursor = conn.execute(
            "UPDATE jobs SET status = ?, version = ?, updated_us = ?, run_us = ?, enqueued_us = ?,"
            " started_us = ?, completed_us = ?, doc = ? WHERE id = ? AND version = ?",
            (*row[3:5], *row[6:11], row[12], job.id, expected_version),
        )
        if cursor.rowcount != 1:
            return None
        if event is not None:
            _insert_event(conn, event)
        self._enqueue(conn, job, written)
        if self.on_finished is not None and written.is_terminal:
            self.on_finished(conn, written)
        return written

    async def update(self, job: Job, expected_version: int, event: JobEvent | None) -> Job | None:
        return await self.db.write(lambda conn: self._update_in(conn, job, expected_version, event))

    # -- TransactionalStore (when given the queue): the queue is a table of this database --------
    async def decide_and_update(
        self, job_id: JobId, decide: Decide, current: Job | None, ack: Delivery | None
    ) -> tuple[Job, JobEvent | None]:
        """Read (unless ``current`` is still stored), decide, write and ack in one write op.

        The writer thread is the only writer, so the version read here is still the stored one when
        the UPDATE runs: a stale ``current`` costs one re-read, never a retry through the event loop.
        """
        return await self.db.write(lambda conn: self._decide_in(conn, job_id, decide, current, ack))

    async def receive_and_decide(
        self,
        types: Sequence[str],
        max_messages: int,
        wait_seconds: float,
        visibility_seconds: float,
        decide_for: Callable[[Delivery], Decide],
    ) -> list[tuple[Delivery, tuple[Job, JobEvent | None] | Exception]]:
        """Receive from the store's queue and, in the take's transaction, apply ``decide_for(delivery)``
        to each message's job: one commit hides the messages and claims their jobs."""
        queue = self.queue
        if queue is None:
            raise TypeError("receive_and_decide needs the store to be given its database's queue")

        def then(conn: sqlite3.Connection, delivery: Delivery) -> tuple[Job, JobEvent | None] | Exception:
            decide = decide_for(delivery)
            conn.execute("SAVEPOINT decide")
            try:
                outcome = self._decide_in(conn, delivery.job_id, decide, None, None)
            except Exception as exc:  # this job's own failure; the other messages are still taken
                conn.execute("ROLLBACK TO decide")
                conn.execute("RELEASE decide")
                if isinstance(exc, sqlite3.Error):
                    return BackendUnavailableError(f"SQLite write failed: {exc}")
                if isinstance(exc, HeldError):
                    # Held by its type's limits: hidden for the hold's delay only, in this commit, so a
                    # worker that dies before it releases the message does not keep it for a lease.
                    hide_in(conn, delivery, exc.retry_after)
                return exc
            conn.execute("RELEASE decide")
            return outcome

        return await queue.take_then(types, max_messages, wait_seconds, visibility_seconds, then)

    def _decide_in(
        self,
        conn: sqlite3.Connection,
        job_id: JobId,
        decide: Decide,
        current: Job | None,
        ack: Delivery | None,
    ) -> tuple[Job, JobEvent | None]:
        """``decide_and_update``'s work, on the writer thread inside the caller's transaction."""
        job, fresh = current, False
        while True:
            if job is None:
                row = conn.execute("SELECT doc, payload FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is None:
                    raise JobNotFoundError(f"job {job_id} not found", field="id")
                job, fresh = job_from_dict(loads(row[0]), loads(row[1])), True
            outcome = decide(job)
            if outcome is None:
                result, event = job, None
                break
            new, event = outcome
            written = self._update_in(conn, new, job.version, event)
            if written is not None:
                result = written
                break
            if fresh:  # cannot happen with one writer; never loop on it
                raise ConflictError(f"job {job_id} changed under its own transaction")
            job = None  # ``current`` was stale: read the stored one and decide again
        if ack is not None:
            ack_in(conn, ack)
        return result, event

    async def mark_enqueued(self, job_id: JobId, at: datetime) -> None:
        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT doc FROM jobs WHERE id = ? AND status = 'PENDING' AND enqueued_us IS NULL", (job_id,)
            ).fetchone()
            if row is not None:
                doc = loads(row[0])
                doc["enqueued_at"] = to_micros(at)
                conn.execute(
                    "UPDATE jobs SET enqueued_us = ?, doc = ? WHERE id = ?",
                    (doc["enqueued_at"], dumps(doc), job_id),
                )

        await self.db.write(op)

    async def list_jobs(self, filter: JobFilter, first: int, after: JobCursor | None) -> list[Job]:
        where, params = _filter_sql(filter)
        if after is not None:
            where += " AND (created_us < ? OR (created_us = ? AND id < ?))"
            params += [after.created_micros, after.created_micros, after.job_id]

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"SELECT doc, payload FROM jobs WHERE {where} ORDER BY created_us DESC, id DESC LIMIT ?",
                [*params, first],
            ).fetchall()
            return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]

        return await self.db.read(op)

    async def count_jobs(self, filter: JobFilter) -> int:
        where, params = _filter_sql(filter)

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()[0])

        return await self.db.read(op)

    async def list_events(
        self,
        *,
        after: EventCursor | None,
        limit: int,
        job_id: JobId | None = None,
        type: str | None = None,
        owner: str | None = None,
    ) -> list[JobEvent]:
        clauses: list[str] = []
        params: list[Any] = []
        if job_id is not None:
            # Within a job, versions order its events; the cursor's version is what counts.
            clauses.append("job_id = ?")
            params.append(job_id)
            if after is not None:
                clauses.append("version > ?")
                params.append(after.version if after.job_id == job_id else 0)
            order = "version"
        else:
            if after is not None:
                clauses.append("(at_us, job_id, version) > (?, ?, ?)")
                params += [after.at_micros, after.job_id, after.version]
            order = "at_us, job_id, version"
        if type is not None:
            clauses.append("type = ?")
            params.append(type)
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        where = " AND ".join(clauses) or "1"

        def op(conn: sqlite3.Connection) -> list[JobEvent]:
            rows = conn.execute(
                f"SELECT doc FROM events WHERE {where} ORDER BY {order} LIMIT ?", [*params, limit]
            )
            return [event_from_dict(loads(doc)) for (doc,) in rows.fetchall()]

        return await self.db.read(op)

    async def list_logs(self, job_id: JobId, last: int) -> list[JobEvent]:
        def op(conn: sqlite3.Connection) -> list[JobEvent]:
            rows = conn.execute(
                "SELECT doc FROM events WHERE job_id = ? AND kind = ? ORDER BY version DESC LIMIT ?",
                (job_id, JobEventKind.LOG.value, last),
            ).fetchall()
            return [event_from_dict(loads(doc)) for (doc,) in reversed(rows)]

        return await self.db.read(op)

    async def stats(self) -> StoreStats:
        def op(conn: sqlite3.Connection) -> StoreStats:
            counts: dict[str, dict[JobStatus, int]] = {}
            seconds: dict[str, float] = {}
            for type_, status, count, total_us in conn.execute(
                "SELECT type, status, COUNT(*), SUM(CASE WHEN status = 'COMPLETED'"
                " THEN completed_us - started_us ELSE 0 END) FROM jobs GROUP BY type, status"
            ):
                counts.setdefault(type_, {})[JobStatus(status)] = count
                seconds[type_] = seconds.get(type_, 0.0) + (total_us or 0) / 1e6
            return StoreStats({t: TypeCounts(c, seconds.get(t, 0.0)) for t, c in counts.items()})

        return await self.db.read(op)

    async def find_unenqueued(
        self, *, updated_before: datetime, run_before: datetime, limit: int
    ) -> list[Job]:
        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT doc, payload FROM jobs WHERE status = 'PENDING' AND enqueued_us IS NULL"
                " AND updated_us < ? AND (run_us IS NULL OR run_us < ?) ORDER BY updated_us LIMIT ?",
                (to_micros(updated_before), to_micros(run_before), limit),
            ).fetchall()
            return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]

        return await self.db.read(op)
