"""Probes: does each configured backend answer, how fast, which version; are the queues there.

What ``jobpulse check`` reports and what ``serve``, ``api`` and ``worker`` wait on at start. A probe
reads and never writes (no index, no queue, no table is created); it opens its own short-lived
client with the probe's timeout, so a backend that is down costs one timeout, not the driver's
default. Each failure says whether the server did not answer (``unreachable``: worth waiting for)
or answered "no" (a configuration problem: waiting will not help). URLs are shown masked.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.redact import mask_url
from core.settings import Settings

__all__ = ["Probe", "directory_problem", "probe_backends"]

_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclass(frozen=True, slots=True)
class Probe:
    """One backend's answer: ``ok``, or ``error`` and whether it was a missing answer."""

    role: str  # store | queue | bus | blobs
    kind: str  # MongoDB, SQS, Redis, SQLite, in-process, files, S3
    where: str  # masked URL, path, or "" for in-process
    variable: str | None  # the setting that names it
    ok: bool = True
    error: str = ""
    unreachable: bool = False  # no answer (down, refused, timed out): waiting may help
    version: str | None = None
    rtt_ms: float | None = None
    notes: tuple[str, ...] = field(default=())


def short_error(exc: BaseException) -> str:
    """A driver's message without its topology dump and timeout list, on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for cut in (" (configured timeouts", ", Timeout:", ", Topology Description"):
        text = text.split(cut, 1)[0]
    return text if len(text) <= 200 else text[:197] + "..."


def directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as a writable directory (created if missing), or ``None``."""
    path = path.absolute()
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable"
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{path} cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {parent} is not writable"
    return None


async def _timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, (time.perf_counter() - started) * 1000


# -- store ------------------------------------------------------------------------------------------
def _sqlite(settings: Settings) -> Probe:
    path = settings.database_path
    probe = Probe(
        "store", "SQLite", str(path.absolute()), "JOBPULSE_DATA_DIR", version=sqlite3.sqlite_version
    )
    if not path.exists():
        problem = directory_problem(settings.data_dir)
        if problem is not None:
            return replace(probe, ok=False, error=problem)
        return replace(probe, notes=("not created yet: the first start creates it",))
    started = time.perf_counter()
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return replace(probe, ok=False, error=f"cannot read {path}: {exc}")
    rtt = (time.perf_counter() - started) * 1000
    if not os.access(path, os.W_OK):
        return replace(probe, ok=False, error=f"{path} is not writable", rtt_ms=rtt)
    return replace(probe, rtt_ms=rtt)


async def _mongo(settings: Settings, seconds: float) -> Probe:
    from pymongo import AsyncMongoClient
    from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

    url = settings.mongodb_url or ""
    probe = Probe("store", "MongoDB", mask_url(url), "JOBPULSE_MONGODB_URL")
    ms = max(int(seconds * 1000), 1)
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
        )
    except (ConfigurationError, ValueError, TypeError) as exc:
        return replace(probe, ok=False, error=f"not a usable MongoDB URL: {short_error(exc)}")
    try:
        _, rtt = await _timed(client.admin.command("ping"))
        info = await client.admin.command("buildInfo")
        return replace(probe, rtt_ms=rtt, version=str(info.get("version")) if info.get("version") else None)
    except OperationFailure as exc:  # it answered: credentials or rights
        return replace(probe, ok=False, error=short_error(exc))
    except PyMongoError as exc:
        return replace(probe, ok=False, unreachable=True, error=short_error(exc))
    finally:
        await client.close()


# -- queue ------------------------------------------------------------------------------------------
def _aws_client(service: str, settings: Settings, endpoint: str | None, seconds: float) -> Any:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        connect_timeout=seconds, read_timeout=seconds, retries={"total_max_attempts": 1, "mode": "standard"}
    )
    return get_session().create_client(
        service, region_name=settings.aws_region, endpoint_url=endpoint, config=config
    )


def _aws_failure(probe: Probe, exc: Exception) -> Probe:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return replace(probe, ok=False, error=f"{code}: {short_error(exc)}")
    no_answer = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
    return replace(probe, ok=False, unreachable=isinstance(exc, no_answer), error=short_error(exc))


async def _sqs(settings: Settings, types: Sequence[str], seconds: float) -> Probe:
    """SQS answers, and which of ``types``' queues are missing (none looked up when ``types`` is empty)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from core.backends.queue.sqs import queue_names

    endpoint = settings.sqs_endpoint_url or ""
    probe = Probe("queue", "SQS", mask_url(endpoint), "JOBPULSE_SQS_ENDPOINT_URL")
    names = [name for t in types for name in queue_names(settings.sqs_queue_prefix, t)]
    try:
        async with _aws_client("sqs", settings, endpoint, seconds) as client:
            _, rtt = await _timed(client.list_queues(QueueNamePrefix=settings.sqs_queue_prefix, MaxResults=1))
            missing = []
            for name in names:
                try:
                    await client.get_queue_url(QueueName=name)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _MISSING_QUEUE:
                        raise
                    missing.append(name)
    except (BotoCoreError, ClientError, ValueError) as exc:
        return _aws_failure(probe, exc)
    probe = replace(probe, rtt_ms=rtt)
    if not names:
        return probe
    if not missing:
        every = f"all {len(names)} queues exist (each job type's, its -high lane and its dead-letter queue)"
        return replace(probe, notes=(every,))
    listed = ", ".join(missing)
    if settings.sqs_create_queues:
        return replace(probe, notes=(f"missing, created at start: {listed}",))
    return replace(
        probe,
        ok=False,
        error=f"missing queues {listed} (JOBPULSE_SQS_CREATE_QUEUES is off: create them)",
    )


def _sqlite_queue(settings: Settings) -> Probe:
    return Probe("queue", "SQLite", str(settings.database_path.absolute()), "JOBPULSE_DATA_DIR",
                 notes=("a table in the store's file",))  # fmt: skip


# -- bus --------------------------------------------------------------------------------------------
async def _redis(settings: Settings, seconds: float) -> Probe:
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError, RedisError, ResponseError

    url = settings.redis_url or ""
    probe = Probe("bus", "Redis", mask_url(url), "JOBPULSE_REDIS_URL")
    try:
        client = Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
    except (ValueError, TypeError) as exc:
        return replace(probe, ok=False, error=f"not a usable Redis URL: {short_error(exc)}")
    try:
        _, rtt = await _timed(client.ping())
        info = await client.info("server")
        return replace(probe, rtt_ms=rtt, version=str(info.get("redis_version")) or None)
    except (AuthenticationError, ResponseError) as exc:  # it answered: credentials or rights
        return replace(probe, ok=False, error=short_error(exc))
    except (RedisError, OSError) as exc:
        return replace(probe, ok=False, unreachable=True, error=short_error(exc))
    finally:
        await client.aclose()


# -- blobs ------------------------------------------------------------------------------------------
async def _s3(settings: Settings, seconds: float) -> Probe:
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{settings.s3_bucket}/{settings.s3_prefix}"
    if settings.s3_endpoint_url:
        where += f" at {mask_url(settings.s3_endpoint_url)}"
    probe = Probe("blobs", "S3", where, "JOBPULSE_S3_BUCKET")
    try:
        async with _aws_client("s3", settings, settings.s3_endpoint_url, seconds) as client:
            _, rtt = await _timed(client.head_bucket(Bucket=settings.s3_bucket))
    except (BotoCoreError, ClientError, ValueError) as exc:
        return _aws_failure(probe, exc)
    return replace(probe, rtt_ms=rtt)


def _files(settings: Settings) -> Probe:
    root = settings.data_dir / "blobs"
    problem = directory_problem(root)
    probe = Probe("blobs", "files", str(root.absolute()), "JOBPULSE_DATA_DIR")
    return probe if problem is None else replace(probe, ok=False, error=problem)


async def probe_backends(settings: Settings, types: Sequence[str], seconds: float = 5.0) -> list[Probe]:
    """Every backend the settings use (store, queue, bus, and blobs if any), probed one by one;
    on SQS, whether ``types``' queues and dead-letter queues exist.

    Not at once: building an AWS client loads botocore's service model on the event loop, long
    enough on a busy machine to use up a concurrent MongoDB probe's timeout.
    """
    probes = [
        await (_mongo(settings, seconds) if settings.mongodb_url else asyncio.to_thread(_sqlite, settings)),
        await _sqs(settings, types, seconds) if settings.sqs_endpoint_url else _sqlite_queue(settings),
        await _redis(settings, seconds) if settings.redis_url else Probe("bus", "in-process", "", None),
    ]
    if settings.s3_bucket:
        probes.append(await _s3(settings, seconds))
    elif settings.mongodb_url is None and settings.embedded_blobs:
        probes.append(await asyncio.to_thread(_files, settings))
    return probes
