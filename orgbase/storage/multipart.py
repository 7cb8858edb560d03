"""A streaming reader of ``multipart/form-data`` bodies (storage-js and storage-py send
files as forms): fields are read whole (small), the file part is handed on as it arrives,
never held whole. Only what the upload routes need: parts in order, each with its
headers, and a part's bytes up to the next boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import Message

from orgbase.core.errors import Invalid

MAX_HEADER_BYTES = 16384
MAX_FIELD_BYTES = 65536


def malformed(why: str) -> Invalid:
    return Invalid(f"the multipart body is malformed: {why}", code="InvalidRequest")


def boundary_of(content_type: str) -> bytes:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise malformed("no boundary in the content type")
    return boundary.encode("latin-1")


class Part:
    def __init__(self, reader: MultipartReader, headers: Message) -> None:
        self.reader = reader
        self.headers = headers

    @property
    def name(self) -> str:
        value = self.headers.get_param("name", header="content-disposition")
        return value if isinstance(value, str) else ""

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.strip() if value else None

    def chunks(self) -> AsyncIterator[bytes]:
        return self.reader.part_data()

    async def text(self) -> str:
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > MAX_FIELD_BYTES:
                raise malformed(f"the field {self.name[:50]!r} is too long")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise malformed(f"the field {self.name[:50]!r} is not UTF-8") from None


class MultipartReader:
    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self.body = body
        self.delimiter = b"\r\n--" + boundary
        self.buffer = bytearray(b"\r\n")  # the first boundary has no CRLF before it
        self.done = False
        self.in_part = False
        self.at_boundary = False

    async def _more(self) -> bool:
        try:
            chunk = await anext(self.body)
        except StopAsyncIteration:
            return False
        self.buffer += chunk
        return True

    async def next_part(self) -> Part | None:
        while self.in_part:  # the previous part was not read to its end
            async for _ in self.part_data():
                pass
        if self.done:
            return None
        if not self.at_boundary:
            while (at := self.buffer.find(self.delimiter)) < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    del self.buffer[: -len(self.delimiter)]  # a preamble: skipped
                if not await self._more():
                    raise malformed("no boundary")
            del self.buffer[: at + len(self.delimiter)]
        self.at_boundary = False
        return await self._after_boundary()

    async def _after_boundary(self) -> Part | None:
        while len(self.buffer) < 2:
            if not await self._more():
                raise malformed("the body ends inside a boundary")
        if self.buffer[:2] == b"--":
            self.done = True
            return None
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise malformed("part headers too long")
            if not await self._more():
                raise malformed("the body ends inside part headers")
        raw = bytes(self.buffer[:end]).split(b"\r\n", 1)[-1]
        del self.buffer[: end + 4]
        headers = Message()
        for line in raw.split(b"\r\n"):
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        self.in_part = True
        return Part(self, headers)

    async def part_data(self) -> AsyncIterator[bytes]:
        keep = len(self.delimiter) - 1
        while self.in_part:
            at = self.buffer.find(self.delimiter)
            if at >= 0:
                data = bytes(self.buffer[:at])
                del self.buffer[: at + len(self.delimiter)]
                self.in_part = False
                self.at_boundary = True
                if data:
                    yield data
                return
            if len(self.buffer) > keep:
                data = bytes(self.buffer[:-keep])
                del self.buffer[:-keep]
                yield data
            if not await self._more():
                raise malformed("the body ends inside a part")
