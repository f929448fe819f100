"""``S3BlobStore`` against moto's S3: round trips, where it may read, presigned URLs, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.backends.blobs.s3 import S3BlobStore
from core.blobs import BlobNotFoundError
from core.errors import BackendUnavailableError
from core.settings import Settings
from tests.support.s3 import create_bucket, s3_client
from tests.support.servers import free_port


@pytest.fixture
def bucket(sqs_endpoint: str) -> str:
    return create_bucket(sqs_endpoint)


@pytest.fixture
async def store(sqs_endpoint: str, bucket: str) -> AsyncIterator[S3BlobStore]:
    blobs = await S3BlobStore.open(Settings(s3_bucket=bucket, s3_endpoint_url=sqs_endpoint, s3_prefix="jp/"))
    yield blobs
    await blobs.close()


async def test_put_then_get_returns_the_bytes_at_an_s3_location_under_the_prefix(
    store: S3BlobStore, bucket: str
) -> None:
    """``put`` stores the bytes under the prefix and returns ``s3://bucket/prefix/key``; ``get`` reads them."""
    location = await store.put("results/j1/1-abc.json", b'{"a": 1}')

    assert location == f"s3://{bucket}/jp/results/j1/1-abc.json"
    assert await store.get(location) == b'{"a": 1}'


async def test_put_sets_the_content_type(store: S3BlobStore, sqs_endpoint: str, bucket: str) -> None:
    """The object carries the content type given to ``put`` (images are served as images)."""
    await store.put("images/j1/1.png", b"\x89PNG", "image/png")

    head = s3_client(sqs_endpoint).head_object(Bucket=bucket, Key="jp/images/j1/1.png")
    assert head["ContentType"] == "image/png"


async def test_get_of_a_missing_object_is_blob_not_found(store: S3BlobStore, bucket: str) -> None:
    """Reading a key that does not exist raises ``BlobNotFoundError``."""
    with pytest.raises(BlobNotFoundError):
        await store.get(f"s3://{bucket}/jp/nothing-here.json")


async def test_get_refuses_keys_outside_the_prefix(store: S3BlobStore, sqs_endpoint: str, bucket: str) -> None:
    """An object of the bucket outside the prefix is not the store's to read."""
    s3_client(sqs_endpoint).put_object(Bucket=bucket, Key="private/secret.txt", Body=b"secret")

    with pytest.raises(BlobNotFoundError, match="is not under"):
        await store.get(f"s3://{bucket}/private/secret.txt")


async def test_get_refuses_other_buckets(store: S3BlobStore, sqs_endpoint: str) -> None:
    """A bucket that is neither the store's nor a read bucket is refused, even if the credentials reach it."""
    other = create_bucket(sqs_endpoint)
    s3_client(sqs_endpoint).put_object(Bucket=other, Key="photo.png", Body=b"x")

    with pytest.raises(BlobNotFoundError):
        await store.get(f"s3://{other}/photo.png")


async def test_get_reads_any_key_of_a_read_bucket(sqs_endpoint: str, bucket: str) -> None:
    """Buckets named in ``JOBPULSE_S3_READ_BUCKETS`` are readable whatever the key."""
    uploads = create_bucket(sqs_endpoint)
    s3_client(sqs_endpoint).put_object(Bucket=uploads, Key="photos/cat.png", Body=b"meow")
    settings = Settings(s3_bucket=bucket, s3_endpoint_url=sqs_endpoint, s3_read_buckets=f" {uploads} ,")
    store = await S3BlobStore.open(settings)
    try:
        assert await store.get(f"s3://{uploads}/photos/cat.png") == b"meow"
    finally:
        await store.close()


async def test_get_refuses_what_is_not_an_s3_location(store: S3BlobStore) -> None:
    """A location that is not ``s3://bucket/key`` raises ``BlobNotFoundError``."""
    with pytest.raises(BlobNotFoundError, match="not an s3://bucket/key"):
        await store.get("https://example.com/x.png")


async def test_presign_gives_a_url_that_serves_the_object(store: S3BlobStore) -> None:
    """A presigned URL fetches the object with no credentials."""
    location = await store.put("results/j1/1.json", b'{"big": true}')

    url = await store.presign(location, 60)

    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert (response.status_code, response.content) == (200, b'{"big": true}')


async def test_delete_removes_the_object(store: S3BlobStore) -> None:
    """After ``delete`` the location reads as missing."""
    location = await store.put("results/j1/1.json", b"{}")

    await store.delete(location)

    with pytest.raises(BlobNotFoundError):
        await store.get(location)


async def test_ping_answers_when_the_bucket_exists(store: S3BlobStore) -> None:
    """``ping`` returns when the bucket answers."""
    await store.ping()


async def test_ping_fails_when_the_bucket_is_missing(sqs_endpoint: str) -> None:
    """``ping`` raises when the configured bucket does not exist."""
    store = await S3BlobStore.open(Settings(s3_bucket="jp-no-such-bucket", s3_endpoint_url=sqs_endpoint))
    try:
        with pytest.raises(BlobNotFoundError):
            await store.ping()
    finally:
        await store.close()


async def test_unreachable_s3_is_backend_unavailable() -> None:
    """With nothing listening at the endpoint, a write raises ``BackendUnavailableError``."""
    settings = Settings(s3_bucket="b", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    store = await S3BlobStore.open(settings)
    try:
        with pytest.raises(BackendUnavailableError):
            await store.put("k", b"x")
    finally:
        await store.close()
