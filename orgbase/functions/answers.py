"""A handler's return value (or its FunctionError) as the HTTP answer the worker sends
back. Runs in the worker processes (msgspec and the standard library only)."""

from __future__ import annotations

from typing import Any

import msgspec

from orgbase.functions.runtime import FunctionError, Response

JSON = "application/json"
_encoder = msgspec.json.Encoder(enc_hook=str)


class BadAnswer(Exception):
    """The handler answered something that is not an HTTP answer."""


def _body(value: Any) -> tuple[bytes, str | None]:
    if value is None:
        return b"", None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), "application/octet-stream"
    if isinstance(value, str):
        return value.encode(), "text/plain; charset=utf-8"
    try:
        return _encoder.encode(value), JSON
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadAnswer(f"the answer cannot be written as JSON: {exc}") from None


def answer(value: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of what a handler returned."""
    status, given = 200, {}
    if isinstance(value, Response):
        status, given, value = value.status, value.headers, value.body
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise BadAnswer(f"status {status!r} is not an HTTP status")
    body, media_type = _body(value)
    if value is None and status == 200 and not given:
        status = 204
    headers = [(str(k), str(v)) for k, v in given.items()]
    if media_type and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", media_type))
    return status, headers, body


def refusal(error: FunctionError, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A FunctionError as the API's error shape."""
    shape = {
        "code": error.code,
        "message": error.message,
        "details": error.details,
        "hint": None,
        "request_id": request_id,
    }
    return error.status, [("content-type", JSON)], _encoder.encode(shape)
