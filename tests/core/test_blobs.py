"""Large values in the blob store: ``LargeValues`` over the embedded file store, and the service's use of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from core.backends import open_backends
from core.backends.blobs.files import FileBlobStore
from core.blobs import BLOB_KEY, BlobNotFoundError, BlobRef, LargeValues
from core.errors import LeaseLostError, ValidationError
from core.jobtypes import JobTypeRegistry
from core.models import Job, JobStatus, JSONValue, Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES
from workers.runtime import Worker

ALICE = Principal("alice")
THRESHOLD = 1024
BIG = "x" * 5000


def values(store: FileBlobStore | None, **options: int) -> LargeValues:
    settings: dict[str, int] = {
        "threshold_bytes": THRESHOLD,
        "inline_max_bytes": 1_000_000,
        "presign_seconds": 60,
        "cache_bytes": 1_000_000,
        **options,
    }
    return LargeValues(store, **settings)


class CountingStore(FileBlobStore):
    """The embedded store, counting reads."""

    reads = 0

    async def get(self, location: str) -> bytes:
        self.reads += 1
        return await super().get(location)


@pytest.fixture
def files(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "blobs")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[JobService]:
    """The embedded service with its file blob store and a 1 KiB threshold."""
    settings = Settings(data_dir=tmp_path, s3_threshold_bytes=THRESHOLD, backoff_base_seconds=0)
    async with open_backends(settings) as backends:
        assert backends.kinds["blobs"] == "files"
        yield JobService(
            backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings,
            blobs=backends.blobs, transaction=backends.transaction
        )  # fmt: skip


async def test_a_small_value_stays_inline(files: CountingStore) -> None:
    """A value at or under the threshold is returned as it is, and nothing is written."""
    value: JSONValue = {"note": "small"}

    assert await values(files).offload("results/j/1", value) is value
    assert not files.root.exists()


async def test_a_large_value_becomes_a_reference_that_resolves_back(files: CountingStore) -> None:
    """Over the threshold, the value is stored and a reference with its size and SHA-256 comes back."""
    value: JSONValue = {"note": BIG}
    large = values(files)

    stored = await large.offload("results/j/1", value)

    ref = BlobRef.of(stored)
    assert ref is not None and ref.location.startswith("local:results/j/1-")
    assert ref.size == len(orjson.dumps(value)) and len(ref.sha256) == 64
    assert await values(files).resolve(stored) == value


async def test_a_value_posing_as_a_reference_is_always_stored(files: CountingStore) -> None:
    """A small result that holds ``$jobpulse_blob`` is stored as a blob, so it resolves to itself."""
    poser: JSONValue = {BLOB_KEY: "local:../../etc/passwd", "bytes": 1, "sha256": "0" * 64}

    stored = await values(files).offload("results/j/1", poser)

    assert stored != poser and BlobRef.of(stored) is not None
    assert await values(files).resolve(stored) == poser


async def test_resolve_reads_a_blob_once_then_from_the_cache(files: CountingStore) -> None:
    """Concurrent and later resolves of one reference read the store once."""
    stored = await values(files, cache_bytes=0).offload("results/j/1", {"note": BIG})
    large = values(files)

    results = await asyncio.gather(*(large.resolve(stored) for _ in range(5)))
    await large.resolve(stored)

    assert results == [{"note": BIG}] * 5
    assert files.reads == 1


async def test_resolve_refuses_a_damaged_blob(files: CountingStore) -> None:
    """A blob whose bytes no longer match the reference's SHA-256 raises ``BlobNotFoundError``."""
    stored = await values(files, cache_bytes=0).offload("results/j/1", {"note": BIG})
    ref = BlobRef.of(stored)
    assert ref is not None
    (files.root / ref.location.removeprefix("local:")).write_bytes(b'{"note": "forged"}')

    with pytest.raises(BlobNotFoundError, match="SHA-256"):
        await values(files).resolve(stored)


async def test_file_store_refuses_locations_outside_its_directory(files: CountingStore) -> None:
    """A ``local:`` location that climbs out of the blob directory is refused."""
    with pytest.raises(BlobNotFoundError, match="outside"):
        await files.get("local:../secrets.json")


async def test_without_a_store_values_stay_inline(files: CountingStore) -> None:
    """With no blob store, a large value is kept inline and a reference is not followed."""
    large = values(None)
    value: JSONValue = {"note": BIG}
    ref: JSONValue = {BLOB_KEY: "local:x.json", "bytes": 1, "sha256": "0" * 64}

    assert await large.offload("results/j/1", value) is value
    assert await large.resolve(ref) is ref


async def test_submit_refuses_a_payload_posing_as_a_reference(service: JobService) -> None:
    """A client payload holding ``$jobpulse_blob`` is a VALIDATION error on that field."""
    payload: JSONValue = {BLOB_KEY: "local:x.json", "bytes": 1, "sha256": "0" * 64}

    with pytest.raises(ValidationError) as info:
        await service.submit(ALICE, SubmitRequest("noop", payload))

    assert info.value.field == f"payload.{BLOB_KEY}"


async def test_a_large_payload_is_stored_as_a_reference_and_the_handler_gets_the_real_one(
    service: JobService,
) -> None:
    """The store keeps a reference to a large payload; the handler still receives the payload itself."""
    job = await service.submit(ALICE, SubmitRequest("noop", {"note": BIG}))

    async with asyncio.timeout(30):
        await Worker(service, burst=True).run()

    stored = await service.store.get(job.id)
    assert stored is not None and stored.status is JobStatus.COMPLETED
    assert BlobRef.of(stored.payload) is not None
    assert await service.blobs.resolve(stored.result) == {"ok": True, "note": BIG}


async def test_a_large_result_is_stored_as_a_reference(service: JobService) -> None:
    """A completed job holds a reference to its large result, in the job and in its COMPLETED event."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    claim = (await service.claim(job.id, "w1", 60)).claim
    assert claim is not None

    done = await service.complete(claim, {"rows": [BIG]})

    assert BlobRef.of(done.result) is not None
    events = await service.store.list_events(after=None, limit=10, job_id=job.id)
    assert events[-1].job.result == done.result
    assert await service.blobs.resolve(done.result) == {"rows": [BIG]}


async def test_a_completion_that_lost_its_lease_deletes_its_blob(service: JobService, tmp_path: Path) -> None:
    """When the completing write loses (the claim is gone), the blob it wrote is deleted."""
    job = await service.submit(ALICE, SubmitRequest("noop", {}))
    claim = (await service.claim(job.id, "w1", 60)).claim
    assert claim is not None
    await service.cancel(Principal("root", "admin"), job.id)
    await service.finish_cancelled(claim)

    with pytest.raises(LeaseLostError):
        await service.complete(claim, {"rows": [BIG]})

    assert not list((tmp_path / "blobs").rglob("results/*/*.json"))


async def test_submit_many_stores_large_payloads_as_references_and_drops_a_duplicates(
    service: JobService, tmp_path: Path
) -> None:
    """As ``submit`` does for each: a large payload becomes a reference that resolves back, a small
    one stays inline, and the blob of an input answered by an earlier job (same key) is deleted."""
    answers = await service.submit_many(
        ALICE,
        [
            SubmitRequest("noop", {"note": BIG}, idempotency_key="k"),
            SubmitRequest("noop", {"note": "small"}),
            SubmitRequest("noop", {"note": BIG + "y"}, idempotency_key="k"),
        ],
    )

    first, small, again = answers
    assert isinstance(first, Job) and isinstance(small, Job) and again == first
    assert small.payload == {"note": "small"}
    stored = await service.store.get(first.id)
    assert stored is not None and BlobRef.of(stored.payload) is not None
    assert await service.blobs.resolve(stored.payload) == {"note": BIG}
    blobs = [p.name for p in (tmp_path / "blobs").rglob("payloads/*.json")]
    assert len(blobs) == 1 and blobs[0].startswith(f"{first.id}-")
