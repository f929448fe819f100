"""The factory opens the distributed backends the settings name (and the shared fixtures work)."""

from __future__ import annotations

from collections.abc import Callable

from core.backends import open_backends
from core.settings import Settings


async def test_distributed_settings_open_mongo_sqs_and_redis(distributed_settings: Callable[..., Settings]) -> None:
    """Settings naming MongoDB, SQS and Redis open those three adapters, each answering ``ping``."""
    async with open_backends(distributed_settings()) as backends:
        assert backends.kinds == {"store": "mongodb", "queue": "sqs", "bus": "redis"}
        await backends.store.ping()
        await backends.queue.ping()
        await backends.bus.ping()
