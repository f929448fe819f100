"""``image_resize``: scale an image to exact dimensions with Pillow.

The image comes inline as base64 (optionally a ``data:`` URL) or as an ``s3://bucket/key``
location, read through the blob store (its bucket, or one of ``JOBPULSE_S3_READ_BUCKETS``). The
result carries the new image inline as base64, or, when the input was a location or the image is
larger than ``JOBPULSE_S3_THRESHOLD_BYTES`` and S3 is configured, its ``location`` in the
jobpulse bucket. Pillow runs in a thread so the event loop keeps heartbeating.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import warnings
from typing import Annotated, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.blobs import BlobNotFoundError, BlobStore
from core.jobtypes import JobContext, JobType, PermanentError
from core.models import JSONValue

__all__ = ["JOB_TYPE", "ImageResizePayload"]

MAX_SIDE = 10_000
# A small compressed file can decode to a huge bitmap: refuse sources over this many pixels.
MAX_SOURCE_PIXELS = 50_000_000
SAVE_FORMATS = ("PNG", "JPEG", "WEBP")
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_PIXEL_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]


class ImageResizePayload(BaseModel):
    """Resize one image to exactly ``dimensions`` (width, height)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"image": _PIXEL_1x1, "dimensions": [200, 100], "format": "PNG"}]},
    )

    image: str = Field(
        min_length=1,
        description="The image as base64 (a `data:image/...;base64,` prefix is accepted), "
        "or an `s3://bucket/key` location.",
        examples=[_PIXEL_1x1, "s3://my-bucket/photos/cat.jpg"],
    )
    dimensions: tuple[Side, Side] = Field(
        description=f"Target [width, height] in pixels, each 1 to {MAX_SIDE}.", examples=[[200, 100]]
    )
    format: Literal["PNG", "JPEG", "WEBP"] | None = Field(
        default=None,
        description="Output format; default: the source's format if it is one of these, else PNG.",
        examples=["PNG"],
    )

    @field_validator("image")
    @classmethod
    def _base64_or_location(cls, image: str) -> str:
        """Refused at submit, not when it runs: an inline image must at least be base64."""
        if not image.startswith("s3://"):
            try:
                _decode_base64(image)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"not valid base64 ({exc}) nor an s3:// location") from None
        return image


def _decode_base64(data: str) -> bytes:
    text = _DATA_URL.sub("", data.strip(), count=1)
    return base64.b64decode("".join(text.split()), validate=True)


def _from_base64(data: str) -> bytes:
    try:
        return _decode_base64(data)
    except (binascii.Error, ValueError) as exc:
        raise PermanentError(f"payload.image is not valid base64: {exc}") from None


def _decode(raw: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > MAX_SOURCE_PIXELS:
                raise PermanentError(
                    f"payload.image is {width}x{height}; at most {MAX_SOURCE_PIXELS} pixels are accepted"
                )
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentError(f"payload.image is not an image Pillow can read: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PermanentError(f"payload.image is a damaged or unsupported image: {exc}") from None
    return image


def _resize(image: Image.Image, size: tuple[int, int], target: str) -> Image.Image:
    if target == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # JPEG has no alpha channel or palette
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    return image.resize(size, Image.Resampling.LANCZOS)


def _encode(image: Image.Image, target: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=target)
    return out.getvalue()


def _s3(ctx: JobContext) -> BlobStore | None:
    """The blob store when it is S3-like (its locations mean something to the client)."""
    blobs = ctx.blobs
    return blobs if blobs is not None and blobs.shareable else None


async def _read(ctx: JobContext, location: str) -> bytes:
    blobs = _s3(ctx)
    if blobs is None:
        raise PermanentError("S3 locations need JOBPULSE_S3_BUCKET (not configured)")
    try:
        return await blobs.get(location)  # BackendUnavailableError propagates: the attempt is retried
    except BlobNotFoundError as exc:
        raise PermanentError(f"payload.image: {exc}") from None


async def resize_image(ctx: JobContext, payload: ImageResizePayload) -> JSONValue:
    """Decode, resize and re-encode; result ``{width, height, format, image or location}``."""
    from_s3 = payload.image.startswith("s3://")
    if from_s3:
        raw = await _read(ctx, payload.image)
        await ctx.progress(10, f"read {len(raw)} bytes from {payload.image}")
    else:
        raw = await asyncio.to_thread(_from_base64, payload.image)
    image = await asyncio.to_thread(_decode, raw)
    source_format = image.format or ""
    target = payload.format or (source_format if source_format in SAVE_FORMATS else "PNG")
    await ctx.progress(20, f"decoded a {image.width}x{image.height} {source_format or 'image'}")
    resized = await asyncio.to_thread(_resize, image, payload.dimensions, target)
    await ctx.progress(70, f"resized to {resized.width}x{resized.height}")
    encoded = await asyncio.to_thread(_encode, resized, target)
    await ctx.progress(90, f"encoded as {target}")
    result: dict[str, JSONValue] = {"width": resized.width, "height": resized.height, "format": target}
    inline = base64.b64encode(encoded).decode("ascii")
    blobs = _s3(ctx)
    if blobs is not None and (from_s3 or len(inline) > ctx.settings.s3_threshold_bytes):
        key = f"images/{ctx.job.id}/{ctx.attempt}.{_EXTENSIONS[target]}"
        result["location"] = await blobs.put(key, encoded, f"image/{target.lower()}")
        await ctx.progress(95, f"stored at {result['location']}")
    else:
        result["image"] = inline
    return result


JOB_TYPE = JobType(
    "image_resize",
    "Resizes an image (base64 or s3://bucket/key) to exact dimensions; returns the new image as "
    "base64, or its s3:// location when the input was one or the image is large.",
    ImageResizePayload,
    resize_image,
    max_attempts=3,
    timeout_seconds=120,
)
