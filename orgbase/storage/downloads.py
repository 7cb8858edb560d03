"""Answering with a blob: ``Range`` (one range; 206, or 416 past the end), ``ETag`` and
``If-None-Match`` (304), and the body streamed chunk by chunk, or, where the server offers
it (ASGI's ``http.response.pathsend``, as granian does) and the whole file is asked for,
handed to the server to send from the file itself. uvicorn offers neither pathsend nor
zerocopysend: there it is streamed. Every object is served with ``nosniff`` and a CSP
that sandboxes it, so an uploaded page never runs as this origin's."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from orgbase.storage import errors
from orgbase.storage.backends.base import BlobStream
from orgbase.storage.forms import header_text
from orgbase.storage.objects import ObjectRow

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single ``Range``, None for the whole object (no
    header, or one we do not serve: several ranges, other units). 416 past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise errors.range_refused(size)
        return max(0, size - length), size
    start = int(first)
    if start >= size:
        raise errors.range_refused(size)
    end = size if not last else min(size, int(last) + 1)
    if end <= start:
        raise errors.range_refused(size)
    return start, end


def not_modified(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def headers_of(found: ObjectRow, download: str | None) -> dict[str, str]:
    cache = found.cache_control
    headers = {
        "etag": found.etag,
        "last-modified": found.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "accept-ranges": "bytes",
        # A directive stored before uploads were checked may not fit in a header.
        "cache-control": cache if cache and header_text(cache) else "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy": SANDBOX,
    }
    if download is not None:
        filename = download or found.name.rsplit("/", 1)[-1]
        headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return headers


class BlobResponse(ASGIResponse):
    """A blob's bytes (or a range of them), streamed or sent by the server from its file."""

    def __init__(
        self,
        stream: BlobStream,
        *,
        status_code: int,
        length: int,
        whole: bool,
        headers: dict[str, str],
        media_type: str,
        sent: Callable[[int], None],
        is_head: bool = False,
    ) -> None:
        super().__init__(
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            content_length=length,
            is_head_response=is_head,
        )
        if is_head:  # a HEAD tells the length it would have sent
            self.headers["content-length"] = str(length)
        self.stream = stream
        self._extensions: dict[str, Any] = {}
        self.whole = whole
        self.sent = sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._extensions = scope.get("extensions") or {}
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.stream.close()

    async def send_body(self, send: Send, receive: Receive) -> None:
        path = self.stream.local_path
        extensions: dict[str, Any] = self._extensions
        if self.whole and path is not None and "http.response.pathsend" in extensions:
            pathsend: Any = {"type": "http.response.pathsend", "path": str(path)}
            await send(pathsend)
            self.sent(self.content_length)
            return
        total = 0
        try:
            async for chunk in self.stream.chunks():
                total += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.sent(total)
