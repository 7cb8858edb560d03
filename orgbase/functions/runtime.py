"""What a function's code sees: the request, the context (``ctx``) and the answers it may
give. Imported by the operator's modules (``from orgbase.functions.runtime import
Response, FunctionError``) inside the worker processes; it needs msgspec and the standard
library only.

Everything ``ctx`` reaches outside the worker (the database, HTTP, the cache...) is a host
call: the gateway runs it as the invocation's caller, so a function reaches data only as
whoever invoked it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

import msgspec

from orgbase.functions.protocol import Caller, HttpRequest

HostCall = Callable[[str, list[Any]], Awaitable[Any]]
LogSink = Callable[[str, str, dict[str, Any]], None]


class FunctionError(Exception):
    """Raise it to answer the caller with ``status`` and ``{"code", "message"}``: a body
    the function refuses (400), something not found (404)..."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        if not 400 <= status <= 599:
            raise ValueError("a FunctionError's status is 400-599")
        self.status, self.code, self.message, self.details = status, code, message, details


class HostError(Exception):
    """A host call failed (``ctx.db``'s statement, ``ctx.http``'s destination...):
    ``code`` says why (a SQLSTATE for the database), ``status`` is the HTTP status it would
    be."""

    def __init__(self, code: str, message: str, status: int = 500, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.details = code, message, status, details


class Response:
    """An answer with its own status and headers. ``body``: bytes or str as they are, any
    other value as JSON."""

    def __init__(
        self, body: Any = None, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.body, self.status, self.headers = body, status, dict(headers or {})


class Headers(Mapping[str, str]):
    """Request headers, looked up without regard to case."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        for key, value in pairs:
            lower = key.lower()
            self._items[lower] = f"{self._items[lower]}, {value}" if lower in self._items else value

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Request:
    """The HTTP request (for an event or a schedule: a POST whose body is the event)."""

    def __init__(self, raw: HttpRequest) -> None:
        self.method = raw.method
        self.path = raw.path
        self.query_string = raw.query
        self.headers = Headers(raw.headers)
        self.body = raw.body

    @property
    def query(self) -> dict[str, str]:
        """The query's parameters (the first value of each)."""
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    def text(self) -> str:
        try:
            return self.body.decode()
        except UnicodeDecodeError:
            raise FunctionError(400, "invalid_utf8", "the body is not UTF-8 text") from None

    def json(self) -> Any:
        """The body as JSON (a FunctionError 400 ``invalid_json`` when it is not)."""
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            raise FunctionError(400, "invalid_json", "the body is not valid JSON") from None


class Secrets(Mapping[str, str]):
    """The deployment's secrets this function's config names. Never shown in a repr."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)})"

    def redact(self, text: str) -> str:
        for value in self._values.values():
            if len(value) >= 4:
                text = text.replace(value, "[secret]")
        return text


class Database:
    """``ctx.db``: SQL as the caller, under the org's row-level security. One statement
    per call, in a transaction of its own that enters the caller's org first; parameters
    are ``$1``, ``$2``... Rows come back as dicts. (``ctx.system_db``, for functions the
    operator declared privileged: the same, as the platform.)"""

    def __init__(self, call: HostCall, op: str = "db.query") -> None:
        self._call, self._op = call, op

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._call(self._op, ["fetch", sql, list(args)])
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return next(iter(row.values())) if row else None

    async def execute(self, sql: str, *args: Any) -> str:
        """The statement's status (``INSERT 0 1``, ``UPDATE 3``...)."""
        status: str = await self._call(self._op, ["execute", sql, list(args)])
        return status


class HttpAnswer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, Headers(headers), body

    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


class Http:
    """``ctx.http``: outbound HTTP through the gateway's destination guard (public
    addresses only, checked at every call; redirects not followed)."""

    def __init__(self, call: HostCall) -> None:
        self._call = call

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        json: Any = None,
        timeout_seconds: float | None = None,
    ) -> HttpAnswer:
        sent_headers = dict(headers or {})
        if json is not None:
            body = msgspec.json.encode(json)
            sent_headers.setdefault("content-type", "application/json")
        data = body.encode() if isinstance(body, str) else body
        answer = await self._call(
            "http.fetch", [method.upper(), url, list(sent_headers.items()), data, timeout_seconds]
        )
        return HttpAnswer(answer["status"], [tuple(h) for h in answer["headers"]], answer["body"])


class Log:
    """``ctx.log``: structured lines tagged with the function, the invocation and the
    request id (secrets' values are masked)."""

    def __init__(self, sink: LogSink, secrets: Secrets) -> None:
        self._sink, self._secrets = sink, secrets

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        clean = {k: self._secrets.redact(str(v)) for k, v in fields.items()}
        self._sink(level, self._secrets.redact(str(message)), clean)

    def debug(self, message: str, **fields: Any) -> None:
        self._emit("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._emit("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._emit("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._emit("error", message, fields)


class Store:
    """A host capability by name (``ctx.kv``, ``ctx.docs``, ``ctx.realtime``,
    ``ctx.mail``): ``await ctx.kv.get("key")`` is the host call ``kv.get``."""

    def __init__(self, prefix: str, call: HostCall) -> None:
        self._prefix, self._call = prefix, call

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any) -> Any:
            return await self._call(f"{self._prefix}.{name}", list(args))

        return call


class Context:
    """``ctx``: who called, and what the function may reach as them."""

    def __init__(
        self,
        *,
        function: str,
        caller: Caller,
        request_id: str,
        secrets: dict[str, str],
        call: HostCall,
        log: LogSink,
        event: Any = None,
        idempotency_key: str | None = None,
    ) -> None:
        self.function = function
        self.kind = caller.kind
        """``user``, ``api_key``, ``anonymous`` (a public function called without a
        credential), ``event`` (a trigger) or ``schedule``."""
        self.org_id, self.user_id, self.role = caller.org_id, caller.user_id, caller.role
        self.aal, self.key_id = caller.aal, caller.key_id
        self.request_id = request_id
        self.event = event
        self.idempotency_key = idempotency_key
        """Triggers and schedules: the same for every attempt of one delivery."""
        self.secrets = Secrets(secrets)
        self.db = Database(call)
        self.system_db = Database(call, "system_db.query")
        self.http = Http(call)
        self.log = Log(log, self.secrets)
        self.kv = Store("kv", call)
        self.docs = Store("docs", call)
        self.realtime = Store("realtime", call)
        self.mail = Store("mail", call)
