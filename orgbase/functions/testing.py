"""Calling a function's handler in a test, as a worker calls it, without a gateway:
``status, headers, body = await invoke(handler, json={...}, org_id=..., role=...)``.

Host calls (``ctx.db``, ``ctx.http``...) go to ``host`` (``{"db.query": answer}``, each
answer a callable of the call's arguments); without one they fail, as they would in a
worker with no gateway. For a function that needs the database, test it through a real
gateway (``orgbase serve`` and an HTTP client), as orgbase's own tests do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from orgbase.functions.answers import answer, refusal
from orgbase.functions.protocol import Caller, HttpRequest
from orgbase.functions.runtime import Context, FunctionError, HostError, Request

Answer = Callable[[list[Any]], Any]


async def invoke(
    handler: Callable[[Request, Context], Any],
    *,
    method: str = "POST",
    json: Any = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    org_id: str | None = None,
    user_id: str | None = None,
    role: str | None = "member",
    secrets: Mapping[str, str] | None = None,
    host: Mapping[str, Answer] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """The answer: status, headers, and the body (decoded when it is JSON)."""
    if json is not None:
        body = msgspec.json.encode(json)
    raw = HttpRequest(
        method=method, path="/", query="", headers=list((headers or {}).items()), body=body
    )
    answers = dict(host or {})

    async def call(op: str, args: list[Any]) -> Any:
        if op not in answers:
            raise HostError("no_host", f"{op} has no answer in this test", 500)
        return answers[op](args)

    caller = Caller(kind="user", org_id=org_id, user_id=user_id, role=role)
    ctx = Context(
        function="test",
        caller=caller,
        request_id="test",
        secrets=dict(secrets or {}),
        call=call,
        log=lambda level, message, fields: None,
    )
    try:
        status, pairs, data = answer(await handler(Request(raw), ctx))
    except FunctionError as refused:
        status, pairs, data = refusal(refused, "test")
    found = dict(pairs)
    if found.get("content-type") == "application/json":
        return status, found, msgspec.json.decode(data)
    return status, found, data
