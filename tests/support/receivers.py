"""Real HTTP/1.1 receivers on loopback for the webhook tests: a small, strict server on
asyncio streams that records every request and answers as its mode says (a status, a
failure streak, a hang, a dropped connection, a redirect, an endless body)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import TypeAlias, assert_never

from tests.support.waiting import eventually

PATH = "/hook"
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
LINE_LIMIT = 64 * 1024
HUGE_CHUNK = 64 * 1024

_BODILESS = (204, 304)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin-form: a path (and query), no controls
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00\r\n]")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """lower-case names; a repeated header's values joined with ", " """
    body: bytes
    """the whole body, de-chunked"""
    at: float
    """time.monotonic() when the body was complete"""


@dataclass(frozen=True)
class Answer:
    """Answer ``status`` with ``body`` after ``delay`` seconds."""

    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass(frozen=True)
class FailTimes:
    """The first ``n`` requests since the mode was set get ``status``, later ones ``then``."""

    n: int
    status: int = 500
    then: int = 200


@dataclass(frozen=True)
class Hang:
    """Read the request, never answer; the connection stays open until the client leaves or
    the receiver stops."""


@dataclass(frozen=True)
class Close:
    """Read the request, then close the connection without answering."""


@dataclass(frozen=True)
class Redirect:
    """Answer 302 pointing at ``location``."""

    location: str


@dataclass(frozen=True)
class Huge:
    """Answer 200 with a body of ``size`` bytes, written as the client reads it."""

    size: int


Mode: TypeAlias = Answer | FailTimes | Hang | Close | Redirect | Huge


class _Reject(Exception):
    """A request this server refuses: answered with ``status``, then the connection closes
    (after a framing error the next request's start is unknown)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def _head(status: int, length: int, *, close: bool, extra: dict[str, str] | None = None) -> bytes:
    """The status line and headers of an answer; every answer says its Content-Length but
    204 and 304, which have no body and, for 204, may not carry one (RFC 9110 8.6)."""
    assert 200 <= status < 600, f"{status} is not a final status"
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if status not in _BODILESS:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in (extra or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _line(reader: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line, without the CRLF."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise _Reject(431, "line too long") from None
    return line[:-2]


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader)
        if not line:
            return headers
        if line[:1] in (b" ", b"\t"):
            raise _Reject(400, "obsolete line folding")
        name, colon, value = line.partition(b":")
        # No whitespace before the colon (RFC 9112 5.1): it smuggles requests past proxies.
        if not colon or not _TOKEN.fullmatch(name):
            raise _Reject(400, f"bad header line {line!r}")
        value = value.strip(b" \t")
        if _FORBIDDEN_IN_VALUE.search(value):
            raise _Reject(400, f"bad header value {line!r}")
        key, text = name.decode("ascii").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    raise _Reject(431, "too many headers")


async def _chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_text = (await _line(reader)).split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise _Reject(400, f"bad chunk size {size_text!r}")
        size = int(size_text, 16)
        if size == 0:
            await _headers(reader)  # the trailer section: read past it, not recorded
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise _Reject(413, "body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _Reject(400, "chunk not followed by CRLF")


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[Received, bool] | None:
    """The next request on the connection and whether the connection stays open after its
    answer; None when the client closed it between requests."""
    try:
        request_line = await _line(reader)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise _Reject(400, "connection closed inside the request line") from None
        return None
    parts = request_line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise _Reject(400, f"bad request line {request_line!r}")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _Reject(505, f"unsupported version {version!r}")
    headers = await _headers(reader)

    chunked = "transfer-encoding" in headers
    if chunked and "content-length" in headers:
        raise _Reject(400, "both Transfer-Encoding and Content-Length")
    if chunked and headers["transfer-encoding"].lower() != "chunked":
        raise _Reject(501, f"transfer coding {headers['transfer-encoding']!r}")
    length_text = headers.get("content-length", "0").encode("latin-1")
    if not _DIGITS.fullmatch(length_text):
        raise _Reject(400, f"bad Content-Length {length_text!r}")  # also "5, 5" (repeated)
    if int(length_text) > MAX_BODY:
        raise _Reject(413, "body too large")

    if headers.get("expect", "").lower() == "100-continue" and version == b"HTTP/1.1":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    body = await _chunked_body(reader) if chunked else await reader.readexactly(int(length_text))

    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    # HTTP/1.0 clients get one answer per connection: no keep-alive negotiation here.
    keep_alive = version == b"HTTP/1.1" and "close" not in tokens
    received = Received(
        method.decode("ascii"), target.decode("latin-1"), headers, body, time.monotonic()
    )
    return received, keep_alive


class Receiver:
    """One receiver: ``async with Receiver(mode) as receiver:``; its ``url`` is
    http://127.0.0.1:<ephemeral port>/hook (any path is accepted and recorded)."""

    def __init__(self, mode: Mode) -> None:
        self.received: list[Received] = []
        """every complete request, in order of arrival"""
        self.connections = 0
        """connections accepted so far"""
        self._mode = mode
        self._in_mode = 0  # requests since the mode was set (FailTimes counts these)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def port(self) -> int:
        """The ephemeral port (kept after the stop, for messages about what was received)."""
        assert self._port, "the receiver is not started (use `async with`)"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def set_mode(self, mode: Mode) -> None:
        """Answer later requests as ``mode`` says (those already being answered keep theirs)."""
        self._mode = mode
        self._in_mode = 0

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """The first ``count`` requests, once that many have arrived; fails after ``within``."""
        await eventually(
            lambda: len(self.received) >= count,
            within=within,
            what=f"{count} requests at {self.url} (got {len(self.received)})",
        )
        return self.received[:count]

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", 0, limit=LINE_LIMIT
        )
        self._stopping = False
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop listening, drop every open connection (hanging ones too) and wait for their
        tasks to end."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        while self._tasks:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopping:
            # Accepted just before the stop, started just after: stop() did not see it.
            writer.transport.abort()
            return
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._converse(reader, writer)
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()  # the client left mid-request or mid-answer
        except asyncio.CancelledError:
            # stop() cancels: abort, not close (close() would first flush what a client is not
            # reading). Not re-raised: on 3.11 asyncio's callback on this task logs an error
            # when it ends cancelled.
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests and answers on one connection until either side ends it."""
        while True:
            try:
                request = await _request(reader, writer)
            except _Reject as rejection:
                why = str(rejection).encode()
                writer.write(_head(rejection.status, len(why), close=True) + why)
                await writer.drain()
                return
            if request is None:
                return
            received, keep_alive = request
            self.received.append(received)
            mode, index = self._mode, self._in_mode
            self._in_mode += 1
            if not await self._respond(mode, index, received, reader, writer, keep_alive):
                return

    async def _respond(
        self,
        mode: Mode,
        index: int,
        received: Received,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Answer one request as ``mode`` says; whether the connection stays open."""
        close = not keep_alive
        extra: dict[str, str] = {}
        match mode:
            case Answer(status, body, delay):
                await asyncio.sleep(delay)
            case FailTimes(n, failing_status, then):
                status, body = (failing_status, b"failing") if index < n else (then, b"ok")
            case Redirect(location):
                status, body, extra = 302, b"", {"Location": location}
            case Huge(size):
                writer.write(_head(200, size, close=close))
                await writer.drain()
                if received.method != "HEAD":
                    await self._write_huge(writer, size)
                return keep_alive
            case Hang():
                # Keep reading (and dropping) whatever comes, so a client that gives up and
                # closes ends this connection; otherwise stop() does.
                while await reader.read(HUGE_CHUNK):
                    pass
                return False
            case Close():
                return False
            case _:
                assert_never(mode)
        if status in _BODILESS:
            body = b""
        writer.write(_head(status, len(body), close=close, extra=extra))
        # A HEAD answer says the length of the body it does not carry.
        if received.method != "HEAD":
            writer.write(body)
        await writer.drain()
        return keep_alive

    @staticmethod
    async def _write_huge(writer: asyncio.StreamWriter, size: int) -> None:
        # drain() after each chunk: memory stays flat and a client that stops reading
        # holds this here (until it closes or the receiver stops).
        chunk = b"x" * HUGE_CHUNK
        left = size
        while left > 0:
            writer.write(chunk[: min(left, HUGE_CHUNK)])
            left -= HUGE_CHUNK
            await writer.drain()
