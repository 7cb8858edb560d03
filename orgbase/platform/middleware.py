"""The outermost ASGI layer: request id, security headers and the access log.

It is pure ASGI and wraps the whole Litestar app (routing included: platform/app.py), so
404s, 405s and errors raised before a route runs get a request id, headers and a log line
too.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orgbase.core.errors import Invalid
from orgbase.observability.logging import access_log
from orgbase.platform.errors import send_error

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def client_ip(
    scope: Scope, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    """The caller's address: the peer, unless the peer is a trusted proxy, in which case the
    right-most address of X-Forwarded-For that is not itself a trusted proxy."""
    peer = scope.get("client")
    address = peer[0] if peer else None
    if address is not None and not _is_ip(address):
        address = None  # a unix socket or a test transport: no address to speak of
    if not trusted or address is None or not _is_trusted(address, trusted):
        return address
    forwarded = _header(scope, b"x-forwarded-for")
    if not forwarded:
        return address
    for hop in reversed(forwarded.decode("latin-1").split(",")):
        candidate = hop.strip()
        if not _is_ip(candidate):
            return address  # a garbled header: believe only the peer
        if not _is_trusted(candidate, trusted):
            return candidate
    return address


def behind_tls(
    scope: Scope, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Did a trusted proxy receive this request over TLS? (``X-Forwarded-Proto: https``
    from a peer in ``trusted_proxies``; from anyone else the header means nothing.) The
    proxy sets the header (nginx: ``$scheme``); when several are listed, the last one is
    what the nearest proxy saw."""
    peer = scope.get("client")
    if not trusted or not peer or not _is_trusted(peer[0], trusted):
        return False
    forwarded = _header(scope, b"x-forwarded-proto")
    if not forwarded:
        return False
    return forwarded.decode("latin-1").split(",")[-1].strip().lower() == "https"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_trusted(
    address: str, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class RequestObserver(Protocol):
    """Told about every request (metrics, SLO counters)."""

    def started(self) -> None: ...

    def finished(
        self, route: str, method: str, status: int, seconds: float, org_id: str | None
    ) -> None: ...


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[str] = (),
        observer: RequestObserver | None = None,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.observer = observer
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # OrgbaseApp hands lifespan events to Litestar: only http and websocket scopes get here.
        started = time.perf_counter()
        supplied = _header(scope, REQUEST_ID_HEADER)
        valid = supplied is None or _REQUEST_ID_PATTERN.fullmatch(supplied) is not None
        request_id = supplied.decode() if supplied and valid else os.urandom(16).hex()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = client_ip(scope, self.trusted)
        if behind_tls(scope, self.trusted):
            # What the browser used: cookies get Secure, responses HSTS.
            scope["scheme"] = "wss" if scope["type"] == ScopeType.WEBSOCKET else "https"
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        https = scope.get("scheme") in ("https", "wss")
        status_holder = [0]
        observer = self.observer
        if observer is not None:
            observer.started()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "websocket.accept":
                status_holder[0] = 101
            elif message["type"] == "websocket.close" and not status_holder[0]:
                status_holder[0] = 403  # closed before it was accepted
            elif message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", ()))
                present = {bytes(k).lower() for k, _ in headers}
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                if https and _HSTS[0] not in present:
                    headers.append(_HSTS)
                message["headers"] = headers
            await send(message)

        try:
            if not valid and scope["type"] == ScopeType.HTTP:
                refused = Invalid(
                    "X-Request-ID must be 1-128 characters of letters, digits and . _ : -",
                    code="invalid_request_id",
                )
                await send_error(scope, send_with_headers, refused)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            if scope["type"] == ScopeType.HTTP:
                self._finish(scope, state, status_holder[0] or 500, started)
            else:
                # A WebSocket session: one line when it ends (metrics count it apart).
                if observer is not None:
                    observer.finished("websocket", "GET", 101, 0.0, None)
                self._log(scope, state, status_holder[0] or 500, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()

    def _finish(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("path_template") or None
        org_id = state.get("org_id")
        if self.observer is not None:
            # Route templates, never raw paths, become metric labels.
            self.observer.finished(
                route or "unmatched",
                str(scope.get("method")),
                status,
                seconds,
                str(org_id) if org_id else None,
            )
        self._log(scope, state, status, seconds)

    def _log(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        """The access-log line: the same fields on every route (who called is recorded by
        the request-auth component: auth, user_id or key_id, org_id)."""
        if not self.access_log:
            return
        fields: dict[str, Any] = {
            "request_id": state["request_id"],
            "method": scope.get("method") or "WEBSOCKET",
            "path": scope.get("path"),
            "route": scope.get("path_template") or None,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        for key in ("auth", "org_id", "user_id", "key_id", "error_code"):
            if state.get(key) is not None:
                fields[key] = str(state[key])
        access_log(fields, warning=status >= 500)
