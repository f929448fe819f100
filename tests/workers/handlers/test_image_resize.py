"""The ``image_resize`` built-in job type."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from core.errors import ValidationError
from core.jobtypes import PermanentError
from core.models import JobStatus
from core.service import JobService
from tests.workers.conftest import drain, reload, submit
from workers.handlers.image_resize import JOB_TYPE, resize_image


def make_image(size: tuple[int, int] = (40, 30), mode: str = "RGBA", fmt: str = "PNG") -> str:
    """A base64 image of ``size`` made with Pillow."""
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)).save(out, format=fmt)
    return base64.b64encode(out.getvalue()).decode()


def open_result(result: Any) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(result["image"])))


async def test_resize_round_trip(service: JobService) -> None:
    """A base64 PNG comes back resized to the requested dimensions, as a PNG."""
    job = await submit(service, "image_resize", {"image": make_image((40, 30)), "dimensions": [20, 10]})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert isinstance(done.result, dict)
    assert (done.result["width"], done.result["height"], done.result["format"]) == (20, 10, "PNG")
    image = open_result(done.result)
    assert (image.size, image.format) == ((20, 10), "PNG")


async def test_bad_base64_is_refused_at_submit(service: JobService) -> None:
    """An image that is neither base64 nor an s3:// location is a VALIDATION error on payload.image at submit."""
    with pytest.raises(ValidationError) as refused:
        await submit(service, "image_resize", {"image": "not base64 at all!", "dimensions": [10, 10]})
    assert (refused.value.code, refused.value.field) == ("VALIDATION", "payload.image")
    assert "not valid base64" in str(refused.value)


def test_bad_base64_in_a_stored_job_still_fails_cleanly() -> None:
    """A job stored before the check (or by another version) still fails with a clear error when it runs."""
    from workers.handlers.image_resize import _from_base64

    with pytest.raises(PermanentError, match=r"payload\.image is not valid base64"):
        _from_base64("not base64 at all!")


async def test_base64_that_is_not_an_image_is_refused(make_ctx: Any) -> None:
    """Valid base64 of something that is no image is a permanent error."""
    payload = JOB_TYPE.parse({"image": base64.b64encode(b"hello, world").decode(), "dimensions": [5, 5]})
    with pytest.raises(PermanentError, match="not an image Pillow can read"):
        await resize_image(make_ctx(), payload)


async def test_jpeg_output_from_a_transparent_source(make_ctx: Any) -> None:
    """Asking for JPEG from an RGBA image drops the alpha channel instead of failing."""
    payload = JOB_TYPE.parse({"image": make_image(mode="RGBA"), "dimensions": [8, 6], "format": "JPEG"})
    result = await resize_image(make_ctx(), payload)
    image = open_result(result)
    assert (image.format, image.size, image.mode) == ("JPEG", (8, 6), "RGB")


async def test_source_format_is_kept_by_default(make_ctx: Any) -> None:
    """Without ``format``, a WEBP source is resized into WEBP."""
    payload = JOB_TYPE.parse({"image": make_image(mode="RGB", fmt="WEBP"), "dimensions": [4, 4]})
    assert open_result(await resize_image(make_ctx(), payload)).format == "WEBP"


async def test_data_url_prefix_is_accepted(make_ctx: Any) -> None:
    """A ``data:image/png;base64,`` prefix is understood."""
    payload = JOB_TYPE.parse({"image": "data:image/png;base64," + make_image(), "dimensions": [3, 2]})
    assert open_result(await resize_image(make_ctx(), payload)).size == (3, 2)


async def test_progress_is_reported_in_stages(make_ctx: Any) -> None:
    """Decoding, resizing and encoding each report progress, in increasing order."""
    ctx = make_ctx()
    await resize_image(ctx, JOB_TYPE.parse({"image": make_image(), "dimensions": [3, 2]}))
    percents = [p for p, _ in ctx.reports]
    assert len(percents) == 3 and percents == sorted(percents)


async def test_s3_locations_are_refused_until_configured(make_ctx: Any) -> None:
    """An ``s3://`` image is refused with a message naming the missing setting."""
    payload = JOB_TYPE.parse({"image": "s3://bucket/key.png", "dimensions": [3, 2]})
    with pytest.raises(PermanentError, match="JOBPULSE_S3_BUCKET"):
        await resize_image(make_ctx(), payload)


@pytest.mark.parametrize("dimensions", [[0, 10], [10, 10_001], [10], "10x10"])
def test_dimensions_are_validated(dimensions: Any) -> None:
    """Dimensions must be two integers from 1 to 10000."""
    with pytest.raises(ValidationError, match=r"payload\.dimensions"):
        JOB_TYPE.parse({"image": make_image(), "dimensions": dimensions})
