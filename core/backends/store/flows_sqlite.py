"""``SqliteFlowStore``: flows and the dependency index in the embedded database (DESIGN.md §6).

Everything happens in the job store's transactions: a flow and its jobs are inserted by one write
op (all or nothing), and a write that ends a job releases its WAITING dependents in that same
transaction (``SqliteJobStore.on_finished``), so no crash can come between a finish and a release.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from core.backends.codec import dumps, job_from_dict, loads
from core.backends.store.sqlite import _INSERT_JOB, SqliteJobStore, _insert_event, _row
from core.cursors import from_micros, to_micros
from core.dependencies import FlowJobRef, FlowRecord, FlowState, settle_writes
from core.errors import JobNotFoundError
from core.models import Job, JobEvent, JobId

__all__ = ["SqliteFlowStore"]

_INSERT_FLOW = "INSERT INTO flows (id, owner, created_us, state, doc) VALUES (?, ?, ?, ?, ?)"
_EXPIRES = "json_extract(CAST(doc AS TEXT), '$.expires_at')"
# The partial index ``jobs_expiring`` (core/backends/sqlite_db.py): its terms, written the same way.
_FIND_EXPIRED = (
    f"SELECT doc, payload FROM jobs WHERE status = 'PENDING' AND {_EXPIRES} IS NOT NULL AND {_EXPIRES} <= ?"
    f" AND json_extract(CAST(doc AS TEXT), '$.attempts') = 0 ORDER BY {_EXPIRES} LIMIT ?"
)


def flow_to_dict(flow: FlowRecord) -> dict[str, Any]:
    """The stored shape of a flow record (both stores keep it)."""
    return {
        "id": flow.id,
        "owner": flow.owner,
        "name": flow.name,
        "created_at": to_micros(flow.created_at),
        "state": flow.state,
        "cancelled": flow.cancelled,
        "jobs": [[ref.key, ref.job_id, list(ref.after)] for ref in flow.jobs],
    }


def flow_from_dict(data: dict[str, Any]) -> FlowRecord:
    return FlowRecord(
        id=data["id"],
        owner=data["owner"],
        name=data.get("name"),
        created_at=from_micros(data["created_at"]),
        state=data["state"],
        cancelled=bool(data.get("cancelled", False)),
        jobs=tuple(FlowJobRef(key, job_id, tuple(after)) for key, job_id, after in data["jobs"]),
    )


def _read_job(conn: sqlite3.Connection, job_id: JobId) -> Job | None:
    row = conn.execute("SELECT doc, payload FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else job_from_dict(loads(row[0]), loads(row[1]))


def _waiting_dependents(conn: sqlite3.Connection, job_id: JobId) -> list[Job]:
    rows = conn.execute(
        "SELECT j.doc, j.payload FROM job_dependencies d JOIN jobs j ON j.id = d.job_id"
        " WHERE d.depends_on = ? AND j.status = 'WAITING'",
        (job_id,),
    ).fetchall()
    return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]


class SqliteFlowStore:
    """Flows beside ``SqliteJobStore``; installs the store's in-transaction release."""

    releases_in_transaction = True

    def __init__(self, store: SqliteJobStore) -> None:
        self.store = store
        self.db = store.db
        #: (finished job id, version) → the events of the dependents its write released
        self._released: dict[tuple[JobId, int], list[JobEvent]] = {}
        self._releasing: list[Job] | None = None
        store.on_finished = self._release_in

    # -- the release, on the writer thread, in the finishing write's transaction ----------------
    def _release_in(self, conn: sqlite3.Connection, finished: Job) -> None:
        if self._releasing is not None:  # a dependent this release failed: the loop below takes it
            self._releasing.append(finished)
            return
        events: list[JobEvent] = []
        self._releasing = worklist = [finished]
        try:
            while worklist:
                done = worklist.pop()
                for before, new, event in settle_writes(
                    done, _waiting_dependents(conn, done.id), done.updated_at
                ):
                    written = self.store._update_in(conn, new, before.version, event)
                    if written is not None and event is not None:
                        # as published: the job as written (queued here, or still to be sent)
                        events.append(replace(event, job=written.without_payload()))
        finally:
            self._releasing = None
        if events:
            self._released[finished.id, finished.version] = events

    def take_released(self, job_id: JobId, version: int) -> list[JobEvent]:
        return self._released.pop((job_id, version), [])

    # -- graphs -----------------------------------------------------------------------------
    async def insert_graph(self, flow: FlowRecord | None, jobs: Sequence[tuple[Job, JobEvent]]) -> list[Job]:
        flow_row = None
        if flow is not None:
            flow_row = (
                flow.id,
                flow.owner,
                to_micros(flow.created_at),
                FlowState.CREATED,
                dumps(flow_to_dict(flow)),
            )
        ids = {job.id for job, _ in jobs}

        def op(conn: sqlite3.Connection) -> list[Job]:
            if flow_row is not None:
                conn.execute(_INSERT_FLOW, flow_row)
            outside: dict[JobId, Job] = {}
            for job, _ in jobs:
                for dep in job.depends_on:
                    if dep in ids or dep in outside:
                        continue
                    found = _read_job(conn, dep)
                    if found is None or found.owner != job.owner:
                        raise JobNotFoundError(f"job {dep} not found", field="dependsOn")
                    outside[dep] = found
            written: dict[JobId, Job] = {}
            for job, event in jobs:
                # A job with nothing to wait for comes PENDING (``core.flows``): queued right here.
                written[job.id] = stored = self.store._with_enqueued_at(job)
                conn.execute(_INSERT_JOB, (*_row(stored), dumps(job.payload)))
                _insert_event(conn, event)
                self.store._enqueue(conn, job, stored)
                conn.executemany(
                    "INSERT OR IGNORE INTO job_dependencies (depends_on, job_id) VALUES (?, ?)",
                    [(dep, job.id) for dep in job.depends_on],
                )
            # Dependencies already final settle now, in this transaction.
            settled = [found for found in outside.values() if found.is_terminal]
            for final in settled:
                self._release_in(conn, final)
                self._released.pop((final.id, final.version), None)
            if settled:
                for job_id in written:
                    current = _read_job(conn, job_id)
                    assert current is not None
                    written[job_id] = current
            return [written[job.id] for job, _ in jobs]

        return await self.db.write(op)

    async def dependents(self, job_id: JobId, *, waiting_only: bool) -> list[Job]:
        status = " AND j.status = 'WAITING'" if waiting_only else ""

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT j.doc, j.payload FROM job_dependencies d JOIN jobs j ON j.id = d.job_id"
                f" WHERE d.depends_on = ?{status} ORDER BY j.created_us, j.id",
                (job_id,),
            ).fetchall()
            return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]

        return await self.db.read(op)

    async def find_waiting(self, *, updated_before: datetime, limit: int) -> list[Job]:
        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT doc, payload FROM jobs WHERE status = 'WAITING' AND updated_us < ?"
                " ORDER BY updated_us LIMIT ?",
                (to_micros(updated_before), limit),
            ).fetchall()
            return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]

        return await self.db.read(op)

    async def find_expired(self, *, now: datetime, limit: int) -> list[Job]:
        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(_FIND_EXPIRED, (to_micros(now), limit)).fetchall()
            return [job_from_dict(loads(doc), loads(payload)) for doc, payload in rows]

        return await self.db.read(op)

    # -- flow records -------------------------------------------------------------------------
    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        def op(conn: sqlite3.Connection) -> FlowRecord | None:
            row = conn.execute("SELECT doc FROM flows WHERE id = ?", (flow_id,)).fetchone()
            return None if row is None else flow_from_dict(loads(row[0]))

        return await self.db.read(op)

    def _where(self, owner: str | None) -> tuple[str, list[Any]]:
        return ("owner = ?", [owner]) if owner is not None else ("1", [])

    async def list_flows(self, owner: str | None, first: int, after: str | None) -> list[FlowRecord]:
        where, params = self._where(owner)

        def op(conn: sqlite3.Connection) -> list[FlowRecord]:
            clause, args = where, list(params)
            if after is not None:
                row = conn.execute("SELECT created_us FROM flows WHERE id = ?", (after,)).fetchone()
                if row is not None:
                    clause += " AND (created_us, id) < (?, ?)"
                    args += [row[0], after]
            rows = conn.execute(
                f"SELECT doc FROM flows WHERE {clause} AND state = 'created'"
                " ORDER BY created_us DESC, id DESC LIMIT ?",
                [*args, first],
            ).fetchall()
            return [flow_from_dict(loads(doc)) for (doc,) in rows]

        return await self.db.read(op)

    async def count_flows(self, owner: str | None) -> int:
        where, params = self._where(owner)

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"SELECT COUNT(*) FROM flows WHERE {where}", params).fetchone()[0])

        return await self.db.read(op)

    async def set_flow(
        self, flow_id: str, *, state: str | None = None, cancelled: bool | None = None
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT doc FROM flows WHERE id = ?", (flow_id,)).fetchone()
            if row is None:
                return
            doc = loads(row[0])
            if state is not None:
                doc["state"] = state
            if cancelled is not None:
                doc["cancelled"] = cancelled
            conn.execute(
                "UPDATE flows SET state = ?, doc = ? WHERE id = ?", (doc["state"], dumps(doc), flow_id)
            )

        await self.db.write(op)

    async def find_creating(self, *, created_before: datetime, limit: int) -> list[FlowRecord]:
        return []  # embedded flows are inserted in one transaction: never half made

    async def delete_flow(self, flow: FlowRecord) -> None:
        raise NotImplementedError("embedded flows are never left in creation")
