"""Large payloads and results through the API with S3 (moto): stored as blobs, served whole or by URL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bson
import httpx
import orjson
import pytest
from pymongo import MongoClient

from core.backends.blobs.s3 import parse_location
from core.blobs import BlobRef
from core.settings import Settings
from tests.api.helpers import ADMIN, ALICE, Server, api_settings, run_server
from tests.support.s3 import create_bucket, s3_client

#: about 5 MB of JSON
FIVE_MB: dict[str, Any] = {"rows": ["x" * 1000] * 5000}
SMALL_DOC_BYTES = 4096

JOB = "query($id: ID!) { job(id: $id) { status payload result payloadUrl resultUrl } }"


def s3_settings(tmp_path: Path, sqs_endpoint: str, **overrides: Any) -> Settings:
    return api_settings(
        tmp_path / "data",
        s3_bucket=create_bucket(sqs_endpoint),
        s3_endpoint_url=sqs_endpoint,
        max_payload_bytes=1024 * 1024,
        max_request_bytes=2 * 1024 * 1024,
        **overrides,
    )


@pytest.fixture
async def server(tmp_path: Path, sqs_endpoint: str) -> AsyncIterator[Server]:
    """An API server on the embedded store with S3 blobs."""
    async with run_server(s3_settings(tmp_path, sqs_endpoint)) as running:
        yield running


async def complete(server: Server, result: Any) -> str:
    """Submit a noop job and complete it with ``result``, playing the worker."""
    job_id = await server.submit(ADMIN)
    claim = await server.start(job_id)
    await server.service.complete(claim, result)
    return job_id


async def fetch(url: str) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
    assert response.status_code == 200
    return orjson.loads(response.content)


def sqlite_sizes(settings: Settings, job_id: str) -> list[int]:
    """Bytes of the job's row and of each of its events in the SQLite file."""
    with sqlite3.connect(settings.database_path) as conn:
        job = conn.execute("SELECT length(doc) + length(payload) FROM jobs WHERE id = ?", (job_id,))
        events = conn.execute("SELECT length(doc) FROM events WHERE job_id = ?", (job_id,))
        return [row[0] for row in [*job.fetchall(), *events.fetchall()]]


def mongo_sizes(settings: Settings, job_id: str) -> list[int]:
    """BSON bytes of the job's document and of each of its events in MongoDB."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        db = client[settings.mongodb_database]
        docs = [*db.jobs.find({"_id": job_id}), *db.events.find({"job_id": job_id})]
        assert len(docs) >= 2
        return [len(bson.encode(doc)) for doc in docs]
    finally:
        client.close()


@pytest.mark.parametrize("store", ["sqlite", "mongodb"])
async def test_a_5_mb_result_round_trips_while_the_stored_job_stays_small(
    store: str, tmp_path: Path, sqs_endpoint: str, request: pytest.FixtureRequest
) -> None:
    """A 5 MB result comes back whole through the API; the job and its events in the store stay small."""
    overrides: dict[str, Any] = {}
    if store == "mongodb":
        overrides = {
            "mongodb_url": request.getfixturevalue("mongo_url"),
            "mongodb_database": request.getfixturevalue("mongo_database"),
        }
    settings = s3_settings(tmp_path, sqs_endpoint, **overrides)
    async with run_server(settings) as server:
        job_id = await complete(server, FIVE_MB)

        data = await server.data(ADMIN, JOB, id=job_id)

    assert data["job"]["status"] == "COMPLETED"
    assert data["job"]["result"] == FIVE_MB
    sizes = sqlite_sizes(settings, job_id) if store == "sqlite" else mongo_sizes(settings, job_id)
    assert sizes and max(sizes) < SMALL_DOC_BYTES, sizes


async def test_result_url_serves_the_stored_result(server: Server) -> None:
    """``resultUrl`` is a presigned URL that serves the result's JSON without credentials."""
    job_id = await complete(server, FIVE_MB)

    data = await server.data(ADMIN, JOB, id=job_id)

    assert data["job"]["resultUrl"].startswith("http")
    assert await fetch(data["job"]["resultUrl"]) == FIVE_MB


async def test_a_small_result_is_inline_with_no_url(server: Server) -> None:
    """A result under the threshold is stored in the job and ``resultUrl`` is null."""
    job_id = await complete(server, {"answer": 42})

    data = await server.data(ADMIN, JOB, id=job_id)

    assert (data["job"]["result"], data["job"]["resultUrl"]) == ({"answer": 42}, None)
    assert (await server.stored(job_id)).result == {"answer": 42}


async def test_over_the_inline_cap_result_is_null_and_only_the_url_serves_it(
    tmp_path: Path, sqs_endpoint: str
) -> None:
    """A result over ``JOBPULSE_S3_INLINE_MAX_BYTES`` reads as null, with a ``resultUrl`` that serves it."""
    async with run_server(s3_settings(tmp_path, sqs_endpoint, s3_inline_max_bytes=1_000_000)) as server:
        job_id = await complete(server, FIVE_MB)

        body = await server.graphql(ADMIN, JOB, id=job_id)

    assert "errors" not in body
    assert body["data"]["job"]["result"] is None
    assert await fetch(body["data"]["job"]["resultUrl"]) == FIVE_MB


async def test_a_large_payload_is_stored_in_s3_and_read_back_whole(server: Server) -> None:
    """A payload over the threshold is a reference in the store; the API returns it whole, with a URL."""
    payload = {"note": "y" * 200_000}
    job_id = await server.submit(ADMIN, payload=payload)

    data = await server.data(ADMIN, JOB, id=job_id)

    assert data["job"]["payload"] == payload
    assert await fetch(data["job"]["payloadUrl"]) == payload
    ref = BlobRef.of((await server.stored(job_id)).payload)
    assert ref is not None and ref.location.startswith("s3://")


async def test_a_user_cannot_see_another_users_result_url(server: Server) -> None:
    """Another user's job, URL fields included, reads as not existing."""
    job_id = await complete(server, FIVE_MB)

    data = await server.data(ALICE, JOB, id=job_id)

    assert data["job"] is None


async def test_an_unreadable_payload_blob_answers_its_reference(tmp_path: Path, sqs_endpoint: str) -> None:
    """If a payload's blob cannot be read, ``payload`` is its reference rather than an error that nulls the job."""
    settings = s3_settings(tmp_path, sqs_endpoint, s3_cache_bytes=0)
    async with run_server(settings) as server:
        job_id = await server.submit(ADMIN, payload={"note": "y" * 200_000})
        ref = BlobRef.of((await server.stored(job_id)).payload)
        assert ref is not None
        bucket, key = parse_location(ref.location)
        s3_client(sqs_endpoint).delete_object(Bucket=bucket, Key=key)

        body = await server.graphql(ADMIN, "query($id: ID!) { job(id: $id) { id payload } }", id=job_id)

    assert "errors" not in body
    assert body["data"]["job"]["payload"] == ref.to_json()
