"""``FileBlobStore``: the embedded blob store, files under ``<data dir>/blobs``.

It keeps large payloads and results out of the SQLite file on the embedded default. A location is
``local:<key>``, relative to the blob directory, so the data directory can move. Writes are
atomic and durable before they return (temporary file, fsync, rename, fsync of the directory), as
the reference to them is committed right after. Locations never leave the blob directory. There
are no URLs to hand out (``presign`` gives ``None``), so clients always get values inline.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from core.blobs import JSON_TYPE, BlobNotFoundError
from core.errors import BackendUnavailableError

__all__ = ["SCHEME", "FileBlobStore"]

SCHEME = "local:"


class FileBlobStore:
    """Blobs as files below ``root``; see the module docstring."""

    shareable = False

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def ping(self) -> None:
        await asyncio.to_thread(self._ensure_root)

    async def close(self) -> None:
        """Nothing held open."""

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailableError(f"blob directory {self.root} is not usable: {exc}") from exc

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key or path == self.root or not path.is_relative_to(self.root):
            raise BlobNotFoundError(f"{SCHEME}{key} is outside the blob directory")
        return path

    def _path_of(self, location: str) -> Path:
        if not location.startswith(SCHEME):
            raise BlobNotFoundError(f"{location!r} is not a {SCHEME} location")
        return self._path(location.removeprefix(SCHEME))

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def put(self, key: str, data: bytes, content_type: str = JSON_TYPE) -> str:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as exc:
            raise BackendUnavailableError(f"blob {key} not written: {exc}") from exc
        return f"{SCHEME}{path.relative_to(self.root).as_posix()}"

    async def get(self, location: str) -> bytes:
        path = self._path_of(location)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"{location} not found") from exc
        except OSError as exc:
            raise BackendUnavailableError(f"{location} not readable: {exc}") from exc

    async def presign(self, location: str, expires_seconds: int) -> str | None:
        self._path_of(location)
        return None

    async def delete(self, location: str) -> None:
        path = self._path_of(location)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise BackendUnavailableError(f"{location} not deleted: {exc}") from exc
