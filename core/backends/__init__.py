"""Backends by role and technology, and the one factory that picks them from the settings.

| role  | embedded (default)                  | distributed                      |
| ----- | ----------------------------------- | -------------------------------- |
| store | ``store.sqlite.SqliteJobStore``     | ``store.mongo.MongoJobStore``    |
| queue | ``queue.sqlite.SqliteJobQueue``     | ``queue.sqs.SqsJobQueue``        |
| bus   | ``bus.local.LocalEventBus``         | ``bus.redis.RedisEventBus``      |
| blobs | ``blobs.files.FileBlobStore`` (opt.) | ``blobs.s3.S3BlobStore``        |
| schedules | ``store.sqlite_schedules``      | ``store.mongo_schedules``        |

``sqlite_db`` is the one SQLite file the embedded store and queue share (its connection, writer
thread, and the queue-table SQL both write); ``codec`` is the JSON shape both stores keep.
Driver imports stay inside these modules; the distributed ones are imported only when configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.blobs import BlobStore
from core.dependencies import FlowStore
from core.flow_control import ControlStore, TypeLimits
from core.ports import EventBus, JobQueue, JobStore, QueueRecords, TransactionalStore
from core.settings import Settings

if TYPE_CHECKING:  # core.schedules imports the service, which imports this module
    from core.schedules.model import ScheduleStore

__all__ = ["Backends", "control_store_for", "flow_store_for", "open_backends"]


@dataclass(frozen=True, slots=True)
class Backends:
    """The opened backends, and what they can do beyond the ports (``transaction``, ``records``)."""

    store: JobStore
    queue: JobQueue
    bus: EventBus
    #: backend name → "sqlite" / "mongodb" / …, for /readyz and logs
    kinds: dict[str, str]
    #: where large payloads and results go (S3, or files beside SQLite); ``None``: kept inline
    blobs: BlobStore | None = None
    #: the store, when the queue is a table of its database (SQLite store and queue): it reads,
    #: decides, writes and acks in one transaction; ``None``: the ports alone (any other pairing)
    transaction: TransactionalStore | None = None
    #: the queue, when it can take messages an event source received (SQS, for AWS Lambda)
    records: QueueRecords | None = None
    #: cron schedules, beside the jobs in the store (DESIGN.md §7)
    schedules: ScheduleStore | None = None


async def _open_schedules(settings: Settings, store: JobStore, db: object) -> ScheduleStore:
    """The schedule store beside ``store`` (its database; closed with it)."""
    if settings.mongodb_url is not None:
        from core.backends.store.mongo import MongoJobStore
        from core.backends.store.mongo_schedules import MongoScheduleStore

        assert isinstance(store, MongoJobStore)
        return await MongoScheduleStore.open(store.client, settings.mongodb_database)
    from core.backends.sqlite_db import SqliteDatabase
    from core.backends.store.sqlite_schedules import SqliteScheduleStore

    assert isinstance(db, SqliteDatabase)
    return SqliteScheduleStore(db)


@asynccontextmanager
async def open_backends(settings: Settings) -> AsyncIterator[Backends]:
    """Open the store, queue and bus the settings name; close them all on exit."""
    async with AsyncExitStack() as stack:
        db = None
        if settings.mongodb_url is None or settings.sqs_endpoint_url is None:
            from core.backends.sqlite_db import SqliteDatabase

            db = SqliteDatabase(settings.database_path)
            stack.push_async_callback(db.close)

        queue: JobQueue
        sqlite_queue = None
        records: QueueRecords | None = None
        if settings.sqs_endpoint_url is not None:
            from core.backends.queue.sqs import SqsJobQueue

            queue = records = await SqsJobQueue.open(settings)
            queue_kind = "sqs"
        else:
            from core.backends.queue.sqlite import SqliteJobQueue

            assert db is not None
            queue = sqlite_queue = SqliteJobQueue(db)
            queue_kind = "sqlite"
        stack.push_async_callback(queue.close)

        store: JobStore
        transaction: TransactionalStore | None = None
        if settings.mongodb_url is not None:
            from core.backends.store.mongo import MongoJobStore

            store = await MongoJobStore.open(settings)
            store_kind = "mongodb"
        else:
            from core.backends.store.sqlite import SqliteJobStore

            assert db is not None
            # Given the queue of its own database, the store writes it in its transactions.
            store = sqlite_store = SqliteJobStore(db, queue=sqlite_queue)
            if sqlite_queue is not None:
                transaction = sqlite_store
            store_kind = "sqlite"
        stack.push_async_callback(store.close)
        schedules = await _open_schedules(settings, store, db)

        bus: EventBus
        if settings.redis_url is not None:
            from core.backends.bus.redis import RedisEventBus

            bus = await RedisEventBus.open(settings)
            bus_kind = "redis"
        else:
            from core.backends.bus.local import LocalEventBus

            bus = LocalEventBus()
            bus_kind = "local"
        stack.push_async_callback(bus.close)

        kinds = {"store": store_kind, "queue": queue_kind, "bus": bus_kind}
        blobs: BlobStore | None = None
        if settings.s3_bucket:
            from core.backends.blobs.s3 import S3BlobStore

            blobs = await S3BlobStore.open(settings)
            kinds["blobs"] = "s3"
        elif settings.mongodb_url is None and settings.embedded_blobs:
            from core.backends.blobs.files import FileBlobStore

            # Only beside SQLite: workers on other machines could not read these files.
            blobs = FileBlobStore(settings.data_dir / "blobs")
            kinds["blobs"] = "files"
        if blobs is not None:
            stack.push_async_callback(blobs.close)

        yield Backends(store, queue, bus, kinds, blobs, transaction, records, schedules)


def flow_store_for(store: JobStore) -> FlowStore:
    """The flow store beside ``store`` (the same SQLite file, or the same MongoDB database)."""
    from core.backends.store.sqlite import SqliteJobStore

    if isinstance(store, SqliteJobStore):
        from core.backends.store.flows_sqlite import SqliteFlowStore

        return SqliteFlowStore(store)
    from core.backends.store.mongo import MongoJobStore

    if isinstance(store, MongoJobStore):
        from core.backends.store.flows_mongo import MongoFlowStore

        return MongoFlowStore(store)
    raise TypeError(f"no flow store for {type(store).__name__}")


def control_store_for(
    store: JobStore, settings: Settings, declared: Callable[[str], TypeLimits]
) -> ControlStore:
    """Flow control beside ``store`` (DESIGN.md §8): in the SQLite store's claim transactions, or
    slot documents in the same MongoDB database with rate tokens in Redis (``settings.redis_url``)."""
    from core.backends.store.sqlite import SqliteJobStore

    if isinstance(store, SqliteJobStore):
        from core.backends.store.controls_sqlite import SqliteControlStore

        return SqliteControlStore(store, declared)
    from core.backends.store.mongo import MongoJobStore

    if isinstance(store, MongoJobStore):
        from core.backends.store.controls_mongo import MongoControlStore

        return MongoControlStore(store, settings.redis_url)
    raise TypeError(f"no control store for {type(store).__name__}")
