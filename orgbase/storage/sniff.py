"""Does a body's start agree with its declared type? A type with a signature (PNG, JPEG,
GIF, WebP, PDF, ZIP, gzip) must start with it, so an HTML page or a script uploaded as
``image/png`` is refused. (Downloads are also served with ``nosniff`` and a sandboxing
CSP, so what is stored as text is never run as a page.) And may a bucket take a type?"""

from __future__ import annotations

import re

from orgbase.storage.errors import mime_refused

_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/gzip": (b"\x1f\x8b",),
}
MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


def essence(content_type: str | None) -> str:
    """``image/png; charset=x`` -> ``image/png`` (lowercase); a garbled type is refused."""
    value = (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
    if not MIME.fullmatch(value):
        raise mime_refused(value or "(empty)", "not a media type")
    return value


def check_content(declared: str, head: bytes) -> None:
    """``head``: the body's first bytes (all of a short body)."""
    kind = essence(declared)
    if kind == "image/webp":
        ok = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    elif kind in _SIGNATURES:
        ok = head.startswith(_SIGNATURES[kind])
    else:
        return
    if not ok:
        raise mime_refused(kind, "the content is not of this type")


def check_allowed(declared: str, allowed: list[str] | None) -> None:
    if not allowed:
        return
    kind = essence(declared)
    for pattern in allowed:
        wanted = pattern.strip().lower()
        if wanted == kind or (wanted.endswith("/*") and kind.startswith(wanted[:-1])):
            return
    raise mime_refused(kind, "this bucket takes only " + ", ".join(allowed)[:200])
