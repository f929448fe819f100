"""``image_resize`` with S3 (moto): ``s3://`` inputs, and outputs stored as objects named by ``location``."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.backends import open_backends
from core.backends.blobs.s3 import parse_location
from core.models import Job, JobStatus
from core.service import JobService
from core.settings import Settings
from tests.support.s3 import create_bucket, s3_client
from tests.workers.conftest import drain, reload, submit
from workers.registry import load_registry

MakeService = Callable[..., Any]


def png(size: tuple[int, int], noise: bool = False) -> bytes:
    """A PNG of ``size``; with ``noise``, random pixels (so it does not compress)."""
    image = (
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
        if noise
        else Image.new("RGB", size, (10, 120, 200))
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def bucket(sqs_endpoint: str) -> str:
    return create_bucket(sqs_endpoint)


@pytest.fixture
async def make_service(tmp_path: Path, sqs_endpoint: str, bucket: str) -> AsyncIterator[MakeService]:
    """``await make_service(**settings)``: the embedded service with S3 blobs in ``bucket``."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> JobService:
            values: dict[str, Any] = {
                "data_dir": tmp_path,
                "mongodb_url": None,
                "sqs_endpoint_url": None,
                "redis_url": None,
                "s3_bucket": bucket,
                "s3_endpoint_url": sqs_endpoint,
                "wait_time_seconds": 1,
                **overrides,
            }
            settings = Settings(**values)
            backends = await stack.enter_async_context(open_backends(settings))
            registry = load_registry(settings)
            return JobService(
                backends.store,
                backends.queue,
                backends.bus,
                registry,
                settings,
                blobs=backends.blobs,
                transaction=backends.transaction,
            )

        yield make


def upload(endpoint: str, bucket: str, key: str, data: bytes) -> str:
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def stored_image(endpoint: str, location: str) -> Image.Image:
    bucket, key = parse_location(location)
    body = s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return Image.open(io.BytesIO(body))


async def run(service: JobService, payload: dict[str, Any]) -> Job:
    job = await submit(service, "image_resize", payload)
    await drain(service)
    return await reload(service, job)


async def test_an_s3_image_is_resized_into_the_jobpulse_bucket(
    make_service: MakeService, sqs_endpoint: str, bucket: str
) -> None:
    """An ``s3://`` input is read from S3 and the result names the resized image's location."""
    service = await make_service()
    source = upload(sqs_endpoint, bucket, "jobpulse/uploads/cat.png", png((60, 40)))

    done = await run(service, {"image": source, "dimensions": [30, 20]})

    assert done.status is JobStatus.COMPLETED, done.error
    assert isinstance(done.result, dict)
    assert {k: done.result[k] for k in ("width", "height", "format")} == {
        "width": 30,
        "height": 20,
        "format": "PNG",
    }
    location = done.result["location"]
    assert isinstance(location, str) and location.startswith(f"s3://{bucket}/jobpulse/images/{done.id}/")
    assert "image" not in done.result
    assert stored_image(sqs_endpoint, location).size == (30, 20)


async def test_a_large_output_from_base64_is_stored_by_location(
    make_service: MakeService, sqs_endpoint: str
) -> None:
    """A base64 input whose resized image is over the threshold gets a ``location`` instead of ``image``."""
    service = await make_service(s3_threshold_bytes=10_000)
    source = base64.b64encode(png((80, 80), noise=True)).decode()

    done = await run(service, {"image": source, "dimensions": [120, 120]})

    assert done.status is JobStatus.COMPLETED, done.error
    assert isinstance(done.result, dict) and "image" not in done.result
    location = done.result["location"]
    assert isinstance(location, str)
    assert stored_image(sqs_endpoint, location).size == (120, 120)


async def test_a_small_output_from_base64_stays_inline(make_service: MakeService) -> None:
    """With S3 configured, a small base64 result is still returned inline as ``image``."""
    service = await make_service()
    source = base64.b64encode(png((20, 20))).decode()

    done = await run(service, {"image": source, "dimensions": [10, 10]})

    assert isinstance(done.result, dict)
    assert "image" in done.result and "location" not in done.result


async def test_an_image_in_a_read_bucket_is_accepted(make_service: MakeService, sqs_endpoint: str) -> None:
    """An ``s3://`` input in a bucket of ``JOBPULSE_S3_READ_BUCKETS`` is read."""
    uploads = create_bucket(sqs_endpoint)
    service = await make_service(s3_read_buckets=uploads)
    source = upload(sqs_endpoint, uploads, "photos/dog.png", png((50, 50)))

    done = await run(service, {"image": source, "dimensions": [25, 25]})

    assert done.status is JobStatus.COMPLETED, done.error


async def test_an_image_in_another_bucket_fails_the_job_at_once(
    make_service: MakeService, sqs_endpoint: str
) -> None:
    """An ``s3://`` input outside the buckets jobpulse may read fails permanently, after one attempt."""
    elsewhere = create_bucket(sqs_endpoint)
    service = await make_service()
    source = upload(sqs_endpoint, elsewhere, "private/secret.png", png((10, 10)))

    done = await run(service, {"image": source, "dimensions": [5, 5]})

    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert done.error is not None and done.error.startswith("payload.image:")


async def test_a_missing_s3_image_fails_the_job_at_once(make_service: MakeService, bucket: str) -> None:
    """An ``s3://`` input that does not exist fails permanently, naming it."""
    service = await make_service()

    done = await run(service, {"image": f"s3://{bucket}/jobpulse/none.png", "dimensions": [5, 5]})

    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert done.error is not None and "none.png" in done.error


async def test_s3_inputs_are_refused_on_the_embedded_file_store(
    make_service: MakeService, bucket: str
) -> None:
    """Without S3 (the embedded file store only), an ``s3://`` input is refused naming the setting."""
    service = await make_service(s3_bucket=None)
    assert service.blobs.store is not None and not service.blobs.store.shareable

    done = await run(service, {"image": f"s3://{bucket}/jobpulse/cat.png", "dimensions": [5, 5]})

    assert done.status is JobStatus.FAILED
    assert done.error is not None and "JOBPULSE_S3_BUCKET" in done.error
