"""Blobs in an S3-compatible store, through obstore (the Rust object_store crate):
async all the way, a streamed upload becomes a multipart upload that completes (and so
appears) only at ``commit``, and reads stream ranged GETs. Its retries are cut to one with
a short deadline: a store that is down is a 503 in seconds, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from orgbase.core.settings import StorageSettings
from orgbase.storage.backends.base import BlobMissing

MULTIPART_CHUNK = 8 << 20
_END = object()


class S3Writer:
    """Chunks go through a small queue to a background multipart upload (two chunks held
    at most); ``commit`` ends the stream and waits for the upload to complete."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        self._task = asyncio.get_running_loop().create_task(self._upload(store, key))

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item  # obstore aborts the multipart upload
            yield item

    async def _upload(self, store: S3Store, key: str) -> None:
        await obstore.put_async(
            store, key, self._chunks(), chunk_size=MULTIPART_CHUNK, max_concurrency=2
        )

    async def write(self, chunk: bytes) -> None:
        if self._task.done():
            self._task.result()  # the upload failed: say why
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self._task.result()

    async def commit(self) -> None:
        await self._queue.put(_END)
        await self._task

    async def abort(self) -> None:
        if not self._task.done():
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(RuntimeError("upload aborted"))
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except BaseException:
                self._task.cancel()


class S3Stream:
    local_path: Path | None = None

    def __init__(self, result: Any, chunk: int) -> None:
        self.result = result
        self.chunk = chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        async for buffer in self.result.stream(min_chunk_size=self.chunk):
            yield bytes(buffer)

    async def close(self) -> None:
        return None


class S3Backend:
    name = "s3"

    def __init__(self, settings: StorageSettings) -> None:
        options: dict[str, Any] = {
            "timeout": timedelta(seconds=settings.timeout_seconds),
            "connect_timeout": timedelta(seconds=min(5.0, settings.timeout_seconds)),
        }
        if settings.s3_endpoint and settings.s3_endpoint.startswith("http://"):
            options["allow_http"] = True
        config: dict[str, Any] = {"region": settings.s3_region}
        if settings.s3_endpoint:
            config["endpoint"] = settings.s3_endpoint
            config["virtual_hosted_style_request"] = False
        if settings.s3_access_key_id:
            config["access_key_id"] = settings.s3_access_key_id
            config["secret_access_key"] = settings.s3_secret_access_key or ""
        self.store = S3Store(
            settings.s3_bucket,
            prefix=settings.s3_prefix or None,
            client_options=options,  # type: ignore[arg-type]
            retry_config={
                "max_retries": 1,
                "retry_timeout": timedelta(seconds=settings.timeout_seconds),
                "backoff": {"init_backoff": timedelta(milliseconds=100)},
            },
            **config,
        )
        self.chunk_bytes = settings.chunk_bytes

    async def writer(self, key: str) -> S3Writer:
        return S3Writer(self.store, key)

    async def open(self, key: str, start: int, end: int) -> S3Stream:
        if end <= start:
            return S3Stream(_Empty(), self.chunk_bytes)
        try:
            result = await obstore.get_async(self.store, key, options={"range": (start, end)})
        except (NotFoundError, FileNotFoundError):
            raise BlobMissing(key) from None
        return S3Stream(result, self.chunk_bytes)

    async def adopt(self, key: str, path: Path) -> None:
        await obstore.put_async(self.store, key, path, chunk_size=MULTIPART_CHUNK)
        await asyncio.to_thread(path.unlink)

    async def copy(self, source: str, target: str) -> None:
        try:
            await obstore.copy_async(self.store, source, target)
        except (NotFoundError, FileNotFoundError):
            raise BlobMissing(source) from None

    async def delete(self, keys: list[str]) -> None:
        if keys:
            with contextlib.suppress(NotFoundError, FileNotFoundError):
                await obstore.delete_async(self.store, keys)

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        async for batch in obstore.list(self.store, prefix or None, chunk_size=1000):
            for meta in batch:
                yield str(meta["path"]), meta["last_modified"].timestamp()

    async def delete_prefix(self, prefix: str) -> int:
        keys = [key async for key, _ in self.list_keys(prefix)]
        for start in range(0, len(keys), 1000):
            await self.delete(keys[start : start + 1000])
        return len(keys)

    async def sweep_scratch(self, older_than: float) -> int:
        del older_than  # unfinished multipart uploads: the bucket's lifecycle rule
        return 0

    async def check(self) -> None:
        async for _ in obstore.list(self.store, "health/", chunk_size=1):
            break


class _Empty:
    async def stream(self, min_chunk_size: int) -> AsyncIterator[bytes]:
        empty: tuple[bytes, ...] = ()
        for chunk in empty:
            yield chunk
