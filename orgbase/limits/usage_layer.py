"""Pure ASGI: a request's per-org rate-limit headers and the bytes it answered.

The request-auth component leaves the org and the rate-limit decision in the scope's
state; this layer adds ``RateLimit-Policy`` and ``RateLimit`` to the response (429s
included) and counts the response's body bytes to the org's usage.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orgbase.core.metering import Meter
from orgbase.limits.admission import STATE_KEY


class OrgUsageLayer:
    def __init__(self, app: ASGIApp, meter: Meter) -> None:
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        sent = 0

        async def send_with_usage(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                decision = state.get(STATE_KEY)
                if decision is not None:
                    headers = list(message.get("headers", ()))
                    headers += decision.headers()
                    message["headers"] = headers
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    org = state.get("org_id")
                    if isinstance(org, UUID):
                        self.meter.add(org, "response_bytes", sent)
            await send(message)

        await self.app(scope, receive, send_with_usage)
