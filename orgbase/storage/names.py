"""Bucket ids and object names: what may be stored, checked before anything is.

A name never reaches a file system or an S3 key (blobs live under keys the gateway makes
up), so these rules are about names that mean one thing to every client: no ``.`` or
``..`` segment, no empty segment, no leading slash, no control characters (NUL
included), valid UTF-8, at most 1024 bytes. Clients percent-encode names in paths;
Litestar has decoded the path once, and a name that still decodes differently (``%2e%2e``,
``%2f``) is refused rather than decoded twice.
"""

from __future__ import annotations

import re

from orgbase.core.errors import Invalid

MAX_NAME_BYTES = 1024
BUCKET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")


def invalid_key(message: str) -> Invalid:
    return Invalid(message, code="InvalidKey")


RESERVED = frozenset({"public", "sign", "info", "authenticated", "list", "upload", "move", "copy"})
"""Words of the API's own paths (``/object/public/...``): no bucket is called so."""


def bucket_id(value: str) -> str:
    if not BUCKET_ID.fullmatch(value) or value.lower() in RESERVED:
        raise Invalid(
            "a bucket id is 1-63 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, and not one of " + ", ".join(sorted(RESERVED)),
            code="InvalidBucketName",
        )
    return value


def object_name(value: str) -> str:
    """A full object name (``folder/file.png``)."""
    if not value:
        raise invalid_key("the object name is empty")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate
        raise invalid_key("the object name is not valid UTF-8") from None
    if size > MAX_NAME_BYTES:
        raise invalid_key(f"object names are at most {MAX_NAME_BYTES} bytes")
    if _CONTROL.search(value):
        raise invalid_key("object names hold no control characters (NUL included)")
    if _ENCODED.search(value):
        raise invalid_key("the object name is percent-encoded twice")
    if value.startswith("/") or value.endswith("/"):
        raise invalid_key("object names neither start nor end with '/'")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise invalid_key("object names have no empty, '.' or '..' segments")
    return value


def prefix(value: str) -> str:
    """A listing prefix (a folder, ``''`` for the bucket's top): the same rules as a name,
    with a trailing '/' allowed."""
    trimmed = value.strip("/")
    return object_name(trimmed) if trimmed else ""
