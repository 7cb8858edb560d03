"""The one interface every blob backend implements, and the errors it raises.

A blob is written through a ``BlobWriter`` under a key the gateway made up; it becomes
visible under that key only at ``commit`` (durable by then: fsync'd, or a completed S3
upload). ``abort`` leaves nothing behind. Keys start with the org (``<org>/<uuid>``), so an
org's blobs go with one ``delete_prefix``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol


class BlobMissing(Exception):
    """No blob under this key (deleted since its row was read)."""


class BackendFull(Exception):
    """The backend has no room for what is being written."""


class BlobWriter(Protocol):
    async def write(self, chunk: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class BlobStream(Protocol):
    """An opened blob (or part of one): iterate for its bytes, then close."""

    local_path: Path | None
    """The file it is read from, when the server may send the file itself (zero-copy)."""

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    name: str

    async def writer(self, key: str) -> BlobWriter: ...

    async def open(self, key: str, start: int, end: int) -> BlobStream:
        """Bytes ``start`` to ``end`` (exclusive); raises BlobMissing."""
        ...

    async def adopt(self, key: str, path: Path) -> None:
        """A complete local file becomes the blob ``key`` (a finished resumable upload);
        the file is gone afterwards."""
        ...

    async def copy(self, source: str, target: str) -> None: ...

    async def delete(self, keys: list[str]) -> None:
        """Delete blobs (missing ones are no error)."""
        ...

    def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        """Every key under ``prefix`` with its last change (seconds since the epoch)."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def sweep_scratch(self, older_than: float) -> int:
        """Remove unfinished writes older than ``older_than`` (epoch seconds)."""
        ...

    async def check(self) -> None:
        """Raise when the backend cannot be used (readiness)."""
        ...
