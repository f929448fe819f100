"""``S3BlobStore``: large payloads, results and images in an S3 bucket (aiobotocore).

Objects jobpulse writes live under ``s3://<JOBPULSE_S3_BUCKET>/<JOBPULSE_S3_PREFIX><key>``. Reads
are allowed there and in the buckets of ``JOBPULSE_S3_READ_BUCKETS`` (where applications put
images for ``image_resize``), nowhere else: a location is data a client may have chosen, and the
process's credentials must not become a way to read any object they reach. The bucket is not
created here: that is the operator's (or the test's) job, with its lifecycle and access rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from core.blobs import JSON_TYPE, BlobNotFoundError
from core.errors import BackendUnavailableError, ConfigurationError
from core.settings import Settings

__all__ = ["S3BlobStore", "parse_location"]

_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}


def parse_location(location: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; ``BlobNotFoundError`` if it is not one."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not location.startswith("s3://") or not bucket or not key:
        raise BlobNotFoundError(f"{location!r} is not an s3://bucket/key location")
    return bucket, key


@contextmanager
def _mapped(what: str, location: str = "") -> Iterator[None]:
    """Driver errors become jobpulse's at this boundary."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise BlobNotFoundError(f"S3 {what}: {location or 'object'} not found ({code})") from exc
        raise BackendUnavailableError(f"S3 {what} failed: {code}: {exc}") from exc
    except (BotoCoreError, OSError, TimeoutError) as exc:
        raise BackendUnavailableError(f"S3 {what} failed: {exc}") from exc


class S3BlobStore:
    """Blobs as S3 objects under one bucket and prefix; see the module docstring."""

    shareable = True

    def __init__(self, client: Any, settings: Settings, stack: AsyncExitStack) -> None:
        if not settings.s3_bucket:
            raise ConfigurationError("S3BlobStore needs JOBPULSE_S3_BUCKET")
        self._client = client
        self._stack = stack
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.read_buckets = frozenset(settings.s3_read_bucket_names)

    @classmethod
    async def open(cls, settings: Settings) -> S3BlobStore:
        """Create the client (no request is made: ``ping`` tells whether the bucket answers)."""
        config = AioConfig(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        stack = AsyncExitStack()
        with _mapped("client creation"):
            client = await stack.enter_async_context(
                get_session().create_client(
                    "s3",
                    region_name=settings.aws_region,
                    endpoint_url=settings.s3_endpoint_url,
                    config=config,
                )
            )
        return cls(client, settings, stack)

    async def ping(self) -> None:
        with _mapped("HeadBucket", f"bucket {self.bucket}"):
            await self._client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()

    def _own(self, location: str) -> tuple[str, str]:
        """Bucket and key of a location this store wrote (its bucket, under its prefix)."""
        bucket, key = parse_location(location)
        if bucket != self.bucket or not key.startswith(self.prefix):
            raise BlobNotFoundError(f"{location} is not under s3://{self.bucket}/{self.prefix}")
        return bucket, key

    def _readable(self, location: str) -> tuple[str, str]:
        bucket, key = parse_location(location)
        if bucket in self.read_buckets:
            return bucket, key
        return self._own(location)

    async def put(self, key: str, data: bytes, content_type: str = JSON_TYPE) -> str:
        full = f"{self.prefix}{key}"
        with _mapped("PutObject", full):
            await self._client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/{full}"

    async def get(self, location: str) -> bytes:
        bucket, key = self._readable(location)
        with _mapped("GetObject", location):
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        return data

    async def presign(self, location: str, expires_seconds: int) -> str | None:
        bucket, key = self._readable(location)
        with _mapped("presign", location):
            url: str = await self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
            )
        return url

    async def delete(self, location: str) -> None:
        bucket, key = self._own(location)
        with _mapped("DeleteObject", location):
            await self._client.delete_object(Bucket=bucket, Key=key)
