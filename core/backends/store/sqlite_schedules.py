"""``SqliteScheduleStore``: schedules in a table of the embedded database (DESIGN.md §7)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.backends.codec import dumps, loads
from core.backends.sqlite_db import SqliteDatabase
from core.backends.store.schedule_codec import schedule_from_dict, schedule_to_dict
from core.cursors import from_micros, to_micros
from core.errors import ValidationError
from core.schedules.model import Schedule, ScheduleCursor

__all__ = ["SqliteScheduleStore"]

_COLUMNS = "id, owner, name, paused, next_run_us, version, created_us, doc"
_INSERT = f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE schedules SET owner = ?, name = ?, paused = ?, next_run_us = ?, version = ?, created_us = ?,"
    " doc = ? WHERE id = ? AND version = ?"
)


def _row(schedule: Schedule) -> tuple[Any, ...]:
    doc = schedule_to_dict(schedule)
    return (
        schedule.id,
        schedule.owner,
        schedule.name,
        int(schedule.paused),
        doc["next_run_us"],
        schedule.version,
        doc["created_us"],
        dumps(doc),
    )


def _schedule(row: Sequence[Any]) -> Schedule:
    return schedule_from_dict(loads(row[0]))


class SqliteScheduleStore:
    """Schedules in the ``schedules`` table; the unique (owner, name) index keeps names apart."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def insert(self, schedule: Schedule) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(_INSERT, _row(schedule))
            except sqlite3.IntegrityError:
                return False
            return True

        return await self.db.write(op)

    async def get(self, schedule_id: str) -> Schedule | None:
        def op(conn: sqlite3.Connection) -> Schedule | None:
            row = conn.execute("SELECT doc FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
            return None if row is None else _schedule(row)

        return await self.db.read(op)

    async def get_many(self, schedule_ids: Sequence[str]) -> dict[str, Schedule]:
        ids = list(dict.fromkeys(schedule_ids))

        def op(conn: sqlite3.Connection) -> dict[str, Schedule]:
            found: dict[str, Schedule] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                sql = f"SELECT doc FROM schedules WHERE id IN ({', '.join('?' * len(chunk))})"
                for row in conn.execute(sql, chunk):
                    schedule = _schedule(row)
                    found[schedule.id] = schedule
            return found

        return await self.db.read(op) if ids else {}

    async def update(self, schedule: Schedule, expected_version: int) -> Schedule | None:
        row = _row(schedule)

        def op(conn: sqlite3.Connection) -> bool:
            try:
                cursor = conn.execute(_UPDATE, (*row[1:], schedule.id, expected_version))
            except sqlite3.IntegrityError as exc:
                raise ValidationError(f"a schedule named {schedule.name!r} exists", field="name") from exc
            return cursor.rowcount == 1

        return schedule if await self.db.write(op) else None

    async def update_many(
        self, items: Sequence[tuple[Schedule, int]]
    ) -> list[Schedule | None | BaseException]:
        rows = [(_row(schedule), schedule, expected) for schedule, expected in items]

        def op(conn: sqlite3.Connection) -> list[Schedule | None | BaseException]:
            answers: list[Schedule | None | BaseException] = []
            for row, schedule, expected in rows:
                try:
                    cursor = conn.execute(_UPDATE, (*row[1:], schedule.id, expected))
                except sqlite3.IntegrityError as exc:
                    answers.append(
                        ValidationError(f"a schedule named {schedule.name!r} exists", field="name")
                    )
                    del exc
                    continue
                answers.append(schedule if cursor.rowcount == 1 else None)
            return answers

        return await self.db.write(op) if rows else []

    async def delete(self, schedule_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 1

        return await self.db.write(op)

    async def due(self, before: datetime, limit: int) -> list[Schedule]:
        def op(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(
                "SELECT doc FROM schedules WHERE paused = 0 AND next_run_us <= ?"
                " ORDER BY next_run_us LIMIT ?",
                (to_micros(before), limit),
            )
            return [_schedule(row) for row in rows]

        return await self.db.read(op)

    async def next_due(self) -> datetime | None:
        def op(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT MIN(next_run_us) FROM schedules WHERE paused = 0 AND next_run_us IS NOT NULL"
            ).fetchone()
            return None if row is None else row[0]

        micros = await self.db.read(op)
        return None if micros is None else from_micros(micros)

    async def list(self, owner: str | None, first: int, after: ScheduleCursor | None) -> list[Schedule]:
        clauses, params = _scope(owner)
        if after is not None:
            clauses.append("(created_us > ? OR (created_us = ? AND id > ?))")
            at = to_micros(after[0])
            params.extend([at, at, after[1]])
        where = " AND ".join(clauses) or "1"

        def op(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(
                f"SELECT doc FROM schedules WHERE {where} ORDER BY created_us, id LIMIT ?", (*params, first)
            )
            return [_schedule(row) for row in rows]

        return await self.db.read(op)

    async def count(self, owner: str | None) -> int:
        clauses, params = _scope(owner)
        where = " AND ".join(clauses) or "1"

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"SELECT COUNT(*) FROM schedules WHERE {where}", params).fetchone()[0])

        return await self.db.read(op)


def _scope(owner: str | None) -> tuple[list[str], list[Any]]:
    return (["owner = ?"], [owner]) if owner is not None else ([], [])
