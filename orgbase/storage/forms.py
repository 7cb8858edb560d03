"""What an upload request says besides its bytes: a multipart form (storage-js's
FormData, storage-py's files: ``cacheControl``, ``metadata`` fields, then the file part
with its type) or a raw body (``Content-Type``, ``Cache-Control``, ``x-metadata`` as
base64 JSON, ``Content-Length``)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from orgbase.core.json_input import check_json_input
from orgbase.storage import errors
from orgbase.storage.multipart import MultipartReader, boundary_of
from orgbase.storage.publish import Incoming
from orgbase.storage.receive import asgi_body
from orgbase.storage.sniff import essence

_FIELDS = frozenset({"cacheControl", "metadata", "contentEncoding", "upsert"})


def cache_control(value: str | None) -> str | None:
    """An upload's Cache-Control, however it came: sent back as a response header on
    every download, so only what a header may hold (a control character there breaks
    every answer for the object)."""
    if not value:
        return None
    value = value.strip()
    directive = f"max-age={value}" if value.isdigit() else value
    if not header_text(directive):
        raise errors.invalid_request(
            "cacheControl is a directive of at most 200 visible ASCII characters"
        )
    return directive


def header_text(value: str) -> bool:
    """At most 200 visible ASCII characters (and spaces): what a response header can carry."""
    return len(value) <= 200 and all(" " <= c <= "~" for c in value)


def user_metadata(raw: str | None) -> dict[str, Any] | None:
    """An upload's user metadata, however it came (a header, a form field, TUS): a JSON
    object of at most 8 KiB, nesting no deeper than any JSON body may (the body guard's
    rule: deeper would reach the parser's recursion limit)."""
    if not raw:
        return None
    check_json_input(raw.encode())
    try:
        value = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        raise errors.invalid_request(
            "metadata is a JSON object (numbers finite: no NaN or Infinity)"
        ) from None
    if not isinstance(value, dict) or len(raw) > 8192:
        raise errors.invalid_request("metadata is a JSON object of at most 8 KiB")
    if not _storable(value):
        raise errors.invalid_request(
            "metadata cannot hold a NUL character (\\u0000) or an unpaired surrogate"
        )
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's parser takes NaN and Infinity


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: no float holds it
        raise ValueError(f"{text} is out of range")
    return number


def _storable(value: Any) -> bool:
    """JSON that PostgreSQL's jsonb can hold: no text (keys included) with a NUL or a
    surrogate without its pair. (Its depth was checked before.)"""
    if isinstance(value, str):
        return "\x00" not in value and _encodes(value)
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a surrogate JSON's \ud800 escape gave without its pair
        return False
    return True


def _header_metadata(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        return user_metadata(base64.b64decode(value, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError):
        raise errors.invalid_request("x-metadata is base64 of a JSON object") from None


def _length(headers: Any) -> int | None:
    value = headers.get("content-length")
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


async def upload_of(headers: Any, receive: Any) -> tuple[Incoming, AsyncIterator[bytes]]:
    content_type = headers.get("content-type") or "application/octet-stream"
    if not content_type.lower().startswith("multipart/form-data"):
        incoming = Incoming(
            essence(content_type),
            cache_control(headers.get("cache-control")),
            _header_metadata(headers.get("x-metadata")),
            _length(headers),
        )
        return incoming, asgi_body(receive)
    reader = MultipartReader(asgi_body(receive), boundary_of(content_type))
    fields: dict[str, str] = {}
    while (part := await reader.next_part()) is not None:
        if part.name in _FIELDS and part.headers.get_filename() is None:
            fields[part.name] = await part.text()
            continue
        incoming = Incoming(
            essence(part.content_type),
            cache_control(fields.get("cacheControl") or headers.get("cache-control")),
            user_metadata(fields.get("metadata")),
        )
        return incoming, part.chunks()
    raise errors.invalid_request("the form has no file part")
