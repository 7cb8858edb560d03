"""Taking a body in: straight from the ASGI receive channel (never read whole), through
size limits, the type check of its first bytes and SHA-256, into a blob writer, in chunks
of ``chunk_bytes`` (the memory one upload holds)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.storage import errors
from orgbase.storage.backends.base import BackendFull, BlobMissing, BlobWriter
from orgbase.storage.sniff import check_content

SNIFF_BYTES = 64


class Interrupted(Invalid):
    """The client went away before the body ended: nothing is kept."""

    default_code = "upload_interrupted"


async def asgi_body(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Interrupted("the connection closed before the body ended")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


@dataclass(frozen=True, slots=True)
class Limit:
    bytes: int
    which: str
    """What set it (file_size_limit, max_object_bytes, Upload-Length)."""


@dataclass(frozen=True, slots=True)
class Received:
    size: int
    sha256: bytes


@dataclass(eq=False)
class Receiver:
    """Feeds one body into one writer. While a chunk is hashed and written (both in worker
    threads, side by side: hashlib and the file write let go of the GIL), the next one is
    received: two chunks in memory at most."""

    writer: BlobWriter
    limit: Limit
    mimetype: str
    chunk_bytes: int
    timeout: float
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256, init=False)
    size: int = field(default=0, init=False)
    _pending: list[bytes] = field(default_factory=list, init=False)
    _pending_size: int = field(default=0, init=False)
    _checked: bool = field(default=False, init=False)
    _in_flight: asyncio.Task[None] | None = field(default=None, init=False)

    async def take(self, chunks: AsyncIterator[bytes]) -> Received:
        try:
            async for chunk in chunks:
                self.size += len(chunk)
                if self.size > self.limit.bytes:
                    raise errors.too_large(self.limit.bytes, self.limit.which)
                self._pending.append(chunk)
                self._pending_size += len(chunk)
                if self._pending_size >= self.chunk_bytes:
                    await self._flush()
            await self._flush()
            await self._settle()
        except BaseException:
            # Let the chunk in flight finish (its thread cannot be stopped) before the
            # caller aborts the writer and closes what that thread writes to.
            if self._in_flight is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._in_flight)
            raise
        if not self._checked:
            check_content(self.mimetype, b"")
        return Received(self.size, self.hasher.digest())

    async def _settle(self) -> None:
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await task

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        if not self._checked:
            check_content(self.mimetype, data[:SNIFF_BYTES])
            self._checked = True
        await self._settle()  # the previous chunk is hashed and written first (in order)
        self._in_flight = asyncio.ensure_future(self._store(data))

    async def _store(self, data: bytes) -> None:
        await asyncio.gather(
            asyncio.to_thread(self.hasher.update, data),
            backend_call(self.writer.write(data), self.timeout),
        )


async def backend_call(work: Any, seconds: float) -> Any:
    """One backend operation, bounded in time; its failures as the API's 503s."""
    try:
        return await asyncio.wait_for(work, seconds)
    except (OrgbaseError, BlobMissing):
        raise
    except BackendFull:
        raise errors.backend_full() from None
    except Exception as exc:  # OSError, a timeout, the S3 client's errors: the store failed
        raise errors.backend_down(f"the file store failed: {type(exc).__name__}") from exc
