"""What the function saw of the request, and answers of every kind (tests)."""

from __future__ import annotations

from typing import Any

from orgbase.functions.runtime import FunctionError, Response

config = {"access": "public"}


async def handler(request: Any, ctx: Any) -> Any:
    kind = request.query.get("as", "json")
    if kind == "text":
        return "plain words"
    if kind == "bytes":
        return b"\x00\x01binary"
    if kind == "empty":
        return None
    if kind == "teapot":
        return Response({"brewing": True}, status=418, headers={"x-tea": "earl grey"})
    if kind == "refuse":
        raise FunctionError(422, "invalid_amount", "the amount must be positive", {"min": 1})
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": dict(request.headers),
        "body": request.body.decode(errors="replace"),
        "kind": ctx.kind,
        "org_id": ctx.org_id,
        "user_id": ctx.user_id,
    }
