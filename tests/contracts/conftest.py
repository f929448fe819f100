"""Every port's suite runs against every backend: the fixtures here open one of each per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.backends.sqlite_db import SqliteDatabase
from core.ports import EventBus, JobQueue, JobStore
from core.settings import Settings
from tests.support.servers import unique_name


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "jobpulse.sqlite3")
    yield db
    await db.close()


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    """A fresh, empty job store of each kind."""
    if request.param == "sqlite":
        from core.backends.store.sqlite import SqliteJobStore

        db = SqliteDatabase(tmp_path / "jobpulse.sqlite3")
        # Not given a queue: the plain ``JobStore``, the same contract as MongoDB's.
        yield SqliteJobStore(db)
        await db.close()
    else:
        from core.backends.store.mongo import MongoJobStore

        settings = Settings(
            mongodb_url=request.getfixturevalue("mongo_url"),
            mongodb_database=request.getfixturevalue("mongo_database"),
        )
        mongo = await MongoJobStore.open(settings)
        yield mongo
        await mongo.close()


@pytest.fixture(params=["sqlite", "sqs"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobQueue]:
    """A fresh, empty job queue of each kind (SQS: queues of this test's own prefix)."""
    if request.param == "sqlite":
        from core.backends.queue.sqlite import SqliteJobQueue

        db = SqliteDatabase(tmp_path / "jobpulse.sqlite3")
        yield SqliteJobQueue(db)
        await db.close()
    else:
        from core.backends.queue.sqs import SqsJobQueue

        settings = Settings(
            sqs_endpoint_url=request.getfixturevalue("sqs_endpoint"),
            sqs_queue_prefix=unique_name("t") + "-",
        )
        sqs = await SqsJobQueue.open(settings)
        yield sqs
        await sqs.close()


@pytest.fixture(params=["local", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """A bus of each kind (Redis: channels of this test's own prefix)."""
    if request.param == "local":
        from core.backends.bus.local import LocalEventBus

        local = LocalEventBus()
        yield local
        await local.close()
    else:
        from core.backends.bus.redis import RedisEventBus

        settings = Settings(
            redis_url=request.getfixturevalue("redis_url"), redis_channel_prefix=unique_name("t") + ":"
        )
        redis = await RedisEventBus.open(settings)
        yield redis
        await redis.close()
