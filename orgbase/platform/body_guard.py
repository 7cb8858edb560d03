"""Pure ASGI middleware: request bodies are checked below the JSON level, once, for every
route, before any handler or parser sees them. Whatever the declared content type: every
route that reads a body reads it as JSON (Litestar parses a ``data`` body as JSON whatever
its type, and ``curl -d`` declares a form).

A body that is not UTF-8, or nests deeper than the limit, is answered 400 (``invalid_utf8``,
``json_too_deep``) instead of reaching a parser that would raise something other than a
parse error (a 500). A body larger than the limit is answered 413 as it arrives. Bodies
that pass are handed on unchanged, in one piece.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from orgbase.core.errors import OrgbaseError, TooLarge
from orgbase.core.json_input import MAX_JSON_DEPTH, check_json_input
from orgbase.platform.errors import send_error

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(eq=False)
class JsonBodyGuard:
    app: ASGIApp
    max_body_bytes: int
    max_depth: int = MAX_JSON_DEPTH
    streamed: Callable[[str, str], bool] | None = None
    """Requests whose body is a blob (file uploads): passed on unread, to be streamed
    by their route under its own limits."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        if self.streamed is not None and self.streamed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            body, more = await self._read(scope, receive)
            check_json_input(body, self.max_depth)
        except OrgbaseError as refused:
            await send_error(scope, send, refused)
            return
        sent = False

        async def replay() -> ReceiveMessage:
            nonlocal sent
            if not sent:
                sent = True
                whole: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
                return whole
            return await receive()

        if more is not None:  # the client went away while sending
            await self.app(scope, _ended(more), send)
            return
        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> tuple[bytes, ReceiveMessage | None]:
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the body is larger than {limit} bytes")


def _ended(message: ReceiveMessage) -> Receive:
    async def receive() -> ReceiveMessage:
        return message

    return receive
