"""Downloads: the object's row (through the caller's entry, a public link or a signed
URL), then its blob opened and answered, whole or a range of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.response.base import ASGIResponse

from orgbase.core.metering import Meter
from orgbase.core.settings import StorageSettings
from orgbase.storage.access import Access
from orgbase.storage.backends.base import Backend, BlobMissing, BlobStream
from orgbase.storage.downloads import BlobResponse, byte_range, headers_of, not_modified
from orgbase.storage.objects import ObjectCatalog, ObjectRow
from orgbase.storage.receive import backend_call


@dataclass(eq=False)
class Downloads:
    objects: ObjectCatalog
    backend: Backend
    settings: StorageSettings
    meter: Meter | None

    async def answer(
        self,
        request: Request[Any, Any, Any],
        access: Access,
        bucket: str,
        name: str,
        *,
        public: bool = False,
        found: Callable[[], Awaitable[None]] | None = None,
    ) -> ASGIResponse:
        """``found``: called once the object is known to exist (admission)."""
        row = await self.objects.find(access, bucket, name, public=public)
        if found is not None:
            await found()
        return await self._answer(request, access, row, public)

    async def _answer(
        self, request: Request[Any, Any, Any], access: Access, found: ObjectRow, public: bool
    ) -> ASGIResponse:
        download = request.query_params.get("download")
        headers = headers_of(found, download)
        if not_modified(request.headers.get("if-none-match"), found.etag):
            return ASGIResponse(status_code=304, headers=headers)
        span = byte_range(request.headers.get("range"), found.size)
        start, end = span if span is not None else (0, found.size)
        found, stream = await self._open(access, found, start, end, public)
        if span is not None:
            headers["content-range"] = f"bytes {start}-{end - 1}/{found.size}"
        org = access.org

        def sent(count: int) -> None:
            if self.meter is not None and count:
                self.meter.add(org, "storage_bytes_out", count)

        return BlobResponse(
            stream,
            status_code=206 if span is not None else 200,
            length=end - start,
            whole=span is None,
            headers=headers,
            media_type=found.mimetype,
            sent=sent,
            is_head=request.method == "HEAD",
        )

    async def _open(
        self, access: Access, found: ObjectRow, start: int, end: int, public: bool
    ) -> tuple[ObjectRow, BlobStream]:
        timeout = self.settings.timeout_seconds
        try:
            return found, await backend_call(self.backend.open(found.blob_key, start, end), timeout)
        except BlobMissing:
            # Replaced (and its old blob deleted) since the row was read: read it again.
            again = await self.objects.find(access, found.bucket, found.name, public=public)
            if again.size != found.size:
                end = min(end, again.size)
            try:
                stream = await backend_call(self.backend.open(again.blob_key, start, end), timeout)
            except BlobMissing:
                from orgbase.storage import errors

                raise errors.backend_down("the object's bytes are missing from the store") from None
            return again, stream
