"""Large values out of the job store: the ``BlobStore`` port and ``LargeValues``, the policy over it.

A payload or result whose JSON is larger than ``JOBPULSE_S3_THRESHOLD_BYTES`` is written to the
blob store first, and the job holds a reference in its place: a plain JSON object, so the job
stores keep it like any other value and need no change::

    {"$jobpulse_blob": "s3://bucket/jobpulse/results/<job id>/<attempt>-<sha256[:16]>.json",
     "bytes": 5242880, "sha256": "<hex digest of the stored bytes>"}

The blob is written (and durable) before the job that refers to it, so a reference never points
at nothing; a write that definitely lost (lease lost, idempotent duplicate) deletes its blob. Keys
carry the job id, the attempt and the content's hash, so a reference cannot be guessed or reused
across jobs. Clients never write a reference: a payload holding ``$jobpulse_blob`` is refused, and
a result holding one is always stored as a blob, so every reference in the store is jobpulse's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import orjson
import structlog

from core.errors import BackendError, ValidationError
from core.models import JSONObject, JSONValue

__all__ = ["BLOB_KEY", "BlobNotFoundError", "BlobRef", "BlobStore", "LargeValues"]

log = structlog.get_logger("jobpulse.blobs")

BLOB_KEY = "$jobpulse_blob"
JSON_TYPE = "application/json"


class BlobNotFoundError(BackendError):
    """The blob is missing, damaged (its hash differs), or outside what this store may read."""


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where a large value is kept, its size in bytes and its SHA-256."""

    location: str
    size: int
    sha256: str

    def to_json(self) -> JSONObject:
        return {BLOB_KEY: self.location, "bytes": self.size, "sha256": self.sha256}

    @classmethod
    def of(cls, value: JSONValue) -> BlobRef | None:
        """The reference ``value`` is, or ``None`` when it is a value of its own."""
        if not isinstance(value, dict) or set(value) != {BLOB_KEY, "bytes", "sha256"}:
            return None
        location, size, sha256 = value[BLOB_KEY], value["bytes"], value["sha256"]
        if isinstance(location, str) and isinstance(size, int) and isinstance(sha256, str):
            return cls(location, size, sha256)
        return None


class BlobStore(Protocol):
    """Bytes by key (S3, or files under the data directory). Errors: ``BlobNotFoundError``,
    ``BackendUnavailableError``."""

    #: whether locations mean something outside this deployment (S3: yes; local files: no)
    shareable: bool

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, key: str, data: bytes, content_type: str = JSON_TYPE) -> str:
        """Store ``data`` durably under ``key`` (below the store's prefix); return its location."""

    async def get(self, location: str) -> bytes:
        """The bytes at ``location``; ``BlobNotFoundError`` if missing or not this store's to read."""

    async def presign(self, location: str, expires_seconds: int) -> str | None:
        """A URL anyone holding it may GET until it expires, or ``None`` if the store has none."""

    async def delete(self, location: str) -> None:
        """Remove the blob (nothing happens if it is already gone)."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ByteLru:
    """Decoded values by location, forgetting the least recently used beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, JSONValue]] = OrderedDict()
        self._bytes = 0

    def get(self, location: str) -> tuple[bool, JSONValue]:
        entry = self._entries.get(location)
        if entry is None:
            return False, None
        self._entries.move_to_end(location)
        return True, entry[1]

    def put(self, location: str, size: int, value: JSONValue) -> None:
        if size > self.max_bytes or location in self._entries:
            return
        self._entries[location] = (size, value)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (dropped, _) = self._entries.popitem(last=False)
            self._bytes -= dropped


class LargeValues:
    """Offload large JSON values to a ``BlobStore`` and resolve references back (cached).

    With no store every method is the identity: values stay inline, as they always did.
    """

    def __init__(
        self,
        store: BlobStore | None,
        *,
        threshold_bytes: int,
        inline_max_bytes: int,
        presign_seconds: int,
        cache_bytes: int,
    ) -> None:
        self.store = store
        self.threshold_bytes = threshold_bytes
        self.inline_max_bytes = inline_max_bytes
        self.presign_seconds = presign_seconds
        self._cache = _ByteLru(cache_bytes)
        self._loading: dict[str, asyncio.Future[JSONValue]] = {}

    @staticmethod
    def check_payload(payload: JSONValue) -> None:
        """Refuse a client payload that poses as a reference."""
        if isinstance(payload, dict) and BLOB_KEY in payload:
            raise ValidationError(f"payload.{BLOB_KEY} is reserved", field=f"payload.{BLOB_KEY}")

    async def offload(self, key: str, value: JSONValue) -> JSONValue:
        """``value``, or a reference to it stored under ``<key>-<sha256[:16]>.json`` when large.

        A value holding ``$jobpulse_blob`` (a handler's result) is stored whatever its size, so no
        reference in the job store is anyone's but jobpulse's.
        """
        if self.store is None:
            return value
        data = orjson.dumps(value)
        poses = isinstance(value, dict) and BLOB_KEY in value
        if len(data) <= self.threshold_bytes and not poses:
            return value
        digest = _digest(data)
        location = await self.store.put(f"{key}-{digest[:16]}.json", data)
        self._cache.put(location, len(data), value)
        return BlobRef(location, len(data), digest).to_json()

    async def discard(self, stored: JSONValue, original: JSONValue) -> None:
        """Delete the blob ``offload`` made (``stored is not original``) for a write that lost.

        Best effort: a blob left behind is only storage, never a wrong answer.
        """
        ref = BlobRef.of(stored) if stored is not original else None
        if ref is None or self.store is None:
            return
        try:
            await self.store.delete(ref.location)
        except BackendError as exc:
            log.warning("unused blob not deleted", location=ref.location, error=str(exc))

    async def resolve(self, value: JSONValue) -> JSONValue:
        """The value a reference stands for (read once, then cached); any other value as it is."""
        ref = BlobRef.of(value)
        if ref is None or self.store is None:
            return value
        found, cached = self._cache.get(ref.location)
        if found:
            return cached
        loading = self._loading.get(ref.location)
        if loading is None:
            loading = self._loading[ref.location] = asyncio.ensure_future(self._load(ref))
            loading.add_done_callback(lambda _: self._loading.pop(ref.location, None))
        return await asyncio.shield(loading)

    async def _load(self, ref: BlobRef) -> JSONValue:
        assert self.store is not None
        data = await self.store.get(ref.location)
        if _digest(data) != ref.sha256:
            raise BlobNotFoundError(f"blob {ref.location} does not match its SHA-256 (damaged or replaced)")
        value: JSONValue = orjson.loads(data)
        self._cache.put(ref.location, len(data), value)
        return value

    async def url(self, value: JSONValue) -> str | None:
        """A presigned URL of the blob ``value`` refers to; ``None`` when inline or not presignable."""
        ref = BlobRef.of(value)
        if ref is None or self.store is None:
            return None
        return await self.store.presign(ref.location, self.presign_seconds)

    def too_large_to_inline(self, value: JSONValue) -> bool:
        """A reference to more than ``inline_max_bytes`` in a store clients can fetch from by URL."""
        ref = BlobRef.of(value)
        return (
            ref is not None
            and self.store is not None
            and self.store.shareable
            and ref.size > self.inline_max_bytes
        )
