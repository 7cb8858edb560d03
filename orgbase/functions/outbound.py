"""``ctx.http``: a function's outbound HTTP, through the destination guard webhooks use.

The URL is parsed strictly, its host resolved and every address checked at every call
(``core.destinations``); the request goes to the checked address (the host name as Host
and TLS server name), so a DNS answer that changes between check and connect cannot send
it inside. Redirects are not followed; at most ``MAX_ANSWER_BYTES`` of an answer are read.
"""

from __future__ import annotations

from typing import Any

import httpx

from orgbase.core import destinations
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import BadGateway, Invalid

MAX_ANSWER_BYTES = 5 << 20
_DROPPED = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Outbound:
    def __init__(self, policy: DestinationPolicy, timeout_seconds: float) -> None:
        self.policy = policy
        self.timeout = timeout_seconds
        self.refused = 0
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the destination
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=8),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, method: str, url: str, headers: list[Any], body: bytes | None, seconds: Any
    ) -> dict[str, Any]:
        if method not in _METHODS or not isinstance(url, str):
            raise Invalid("ctx.http takes a method and a URL", code="function_http_invalid")
        try:
            target = await destinations.resolve(url, self.policy)
        except Invalid as refused:
            self.refused += 1
            raise Invalid(
                refused.message.replace("webhook", "destination"),
                code="function_destination_refused",
                details=refused.details,
            ) from None
        sent = {str(k): str(v) for k, v in headers if str(k).lower() not in _DROPPED}
        sent["host"] = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        extensions: dict[str, Any] = (
            {"sni_hostname": target.host} if target.scheme == "https" else {}
        )
        limit = min(float(seconds), self.timeout) if seconds else self.timeout
        try:
            request = self._client.build_request(
                method, target.target, headers=sent, content=body, extensions=extensions
            )
            request.extensions["timeout"] = httpx.Timeout(limit).as_dict()
            response = await self._client.send(request, stream=True)
            try:
                answer = await _read_whole(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise BadGateway(
                f"the request to {target.host} failed: {type(exc).__name__}",
                code="function_http_failed",
            ) from None
        # The body comes decoded: its encoding and length headers would no longer be true.
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return {"status": response.status_code, "headers": kept, "body": answer}


async def _read_whole(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise BadGateway(
                f"the answer is larger than {MAX_ANSWER_BYTES} bytes",
                code="function_http_failed",
            )
        chunks.append(chunk)
    return b"".join(chunks)
