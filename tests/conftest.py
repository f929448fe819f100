"""Session-wide test servers (real Redis, SQS over moto's server, MongoDB over SecantusDB).

Fixtures for everyone:

* ``redis_url``, ``sqs_endpoint``, ``mongo_url`` — one server each per test session (per xdist
  worker), started on first use on a free port. ``JOBPULSE_TEST_MONGODB_URL`` replaces SecantusDB
  with a MongoDB of your own.
* ``distributed_env`` — ``JOBPULSE_*`` variables naming those servers with a database, queue
  prefix and channel prefix of the test's own: pass it to the processes an end-to-end test starts.
* ``distributed_settings`` — the same as a ``Settings`` (keyword overrides accepted).
* ``redis_server`` — the session's ``RedisServer``; ``own_redis`` — a Redis of the test's own that
  it may stop and restart (``own_redis.restart()``) without disturbing other tests.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.support.servers import AWS_TEST_ENV, MongoServer, MotoServer, RedisServer, unique_name

#: how long one test's teardown may take before its worker is ended (stacks printed)
TEARDOWN_SECONDS = 120.0


def pytest_configure(config: pytest.Config) -> None:
    # Dummy credentials before anything creates an AWS client: real AWS is never reached.
    os.environ.update(AWS_TEST_ENV)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Every teardown under a watchdog of its own. pytest-timeout stops its timer as soon as a test
    fails (its ``pytest_exception_interact`` hook), so a teardown that then hangs (a stand-in server
    stuck after the failure) held the whole run until CI's 90 minutes ran out. Now the worker prints
    every thread's stack and ends; xdist reports the test and replaces the worker."""
    timer = threading.Timer(TEARDOWN_SECONDS, _teardown_stuck, (item,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _teardown_stuck(item: pytest.Item) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    with contextlib.suppress(Exception):
        capture.suspend_global_capture(in_=True)  # the stacks go to the real stderr, as pytest-timeout's
    sys.stderr.write(f"\n+++ teardown of {item.nodeid} stuck for {TEARDOWN_SECONDS:g} s; every thread: +++\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    os._exit(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis for one test, which it may stop, kill or restart."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqs_endpoint(moto_server: MotoServer) -> str:
    return moto_server.endpoint


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    external = os.environ.get("JOBPULSE_TEST_MONGODB_URL")
    if external:
        yield external
        return
    server = MongoServer()
    server.start()
    yield server.url
    server.close()


@pytest.fixture
def mongo_database(mongo_url: str) -> Iterator[str]:
    """A database name no other test uses; dropped afterwards."""
    name = unique_name("jp_")
    yield name
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    # Bounded: a stand-in server stuck after a failed test must not hold the teardown (it is
    # cleanup; the server's data is a temporary directory removed with the session).
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_url, serverSelectionTimeoutMS=2000, socketTimeoutMS=30_000
    )
    try:
        client.drop_database(name)
    except PyMongoError as exc:
        sys.stderr.write(f"test database {name} not dropped: {exc!r}\n")
    finally:
        client.close()


@pytest.fixture
def distributed_env(
    tmp_path: Path, redis_url: str, sqs_endpoint: str, mongo_url: str, mongo_database: str
) -> dict[str, str]:
    """Environment for a jobpulse process on the distributed backends, private to this test."""
    return {
        **AWS_TEST_ENV,
        "JOBPULSE_DATA_DIR": str(tmp_path / "data"),
        "JOBPULSE_MONGODB_URL": mongo_url,
        "JOBPULSE_MONGODB_DATABASE": mongo_database,
        "JOBPULSE_SQS_ENDPOINT_URL": sqs_endpoint,
        "JOBPULSE_SQS_QUEUE_PREFIX": unique_name("t") + "-",
        "JOBPULSE_REDIS_URL": redis_url,
        "JOBPULSE_REDIS_CHANNEL_PREFIX": unique_name("t") + ":",
    }


@pytest.fixture
def distributed_settings(distributed_env: dict[str, str]) -> Callable[..., Settings]:
    """``distributed_settings(**overrides)``: ``Settings`` for the distributed backends of this test."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            key.removeprefix("JOBPULSE_").lower(): value
            for key, value in distributed_env.items()
            if key.startswith("JOBPULSE_")
        }
        values.update(overrides)
        return Settings(**values)

    return make
