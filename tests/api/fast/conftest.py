"""Fixtures of the fast-path harness: settings for a fresh server on each backend kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.api.helpers import api_settings
from tests.support.servers import unique_name
from tests.support.services import BACKENDS

ServerSettings = Callable[[str], Settings]


@pytest.fixture(params=BACKENDS)
def server_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerSettings]:
    """``server_settings(name)``: API settings of a server with backends of its own, of this kind."""
    if request.param == "embedded":
        yield lambda name: api_settings(tmp_path / name)
        return
    distributed: Callable[..., Settings] = request.getfixturevalue("distributed_settings")
    mongo_url: str = request.getfixturevalue("mongo_url")
    databases: list[str] = []

    def make(name: str) -> Settings:
        database = unique_name("jp_fast_")
        databases.append(database)
        return api_settings(
            tmp_path / name,
            **{
                **distributed().model_dump(include={"mongodb_url", "sqs_endpoint_url", "redis_url"}),
                "mongodb_database": database,
                "sqs_queue_prefix": unique_name("fast") + "-",
                "redis_channel_prefix": unique_name("fast") + ":",
            },
        )

    yield make
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, serverSelectionTimeoutMS=2000)
    try:
        for database in databases:
            client.drop_database(database)
    finally:
        client.close()
