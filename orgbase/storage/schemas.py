"""Bodies and answers of the storage API, in Supabase Storage's shapes (camelCase where
its clients send or read camelCase)."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from orgbase.core.errors import Invalid

Preset = Literal["members", "owner_private", "admin_write", "public_read"]
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}


class BucketBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    id: str | None = None
    name: str | None = None
    public: bool | None = None
    policy: Preset | None = None
    file_size_limit: int | str | None = None
    allowed_mime_types: list[str] | None = None


class SortBy(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    column: Literal["name", "created_at", "updated_at", "last_accessed_at"] = "name"
    order: Literal["asc", "desc", "ASC", "DESC"] = "asc"


class ListBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    prefix: str = ""
    limit: int = 100
    offset: int = 0
    sortBy: SortBy = msgspec.field(default_factory=SortBy)
    search: str = ""


class MoveBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    bucketId: str
    sourceKey: str
    destinationKey: str
    destinationBucket: str | None = None


class SignBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    expiresIn: int | str
    download: bool | str | None = None


class SignManyBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    expiresIn: int | str
    paths: list[str]


class RemoveBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    prefixes: list[str]


def decode(raw: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise Invalid(f"the body is not valid: {exc}"[:300], code="InvalidRequest") from None
    except msgspec.DecodeError:
        raise Invalid("the body is not valid JSON", code="InvalidRequest") from None


def byte_size(value: int | str | None) -> int | None:
    """A size as a number of bytes or as Supabase's clients write it (``"50MB"``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = re.fullmatch(r"\s*([0-9]{1,15})\s*([A-Za-z]{0,3})\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise Invalid(
                "file_size_limit is a number of bytes, or like '50MB'", code="InvalidRequest"
            )
        number = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if not 0 < number <= 1 << 50:
        raise Invalid("file_size_limit must be positive", code="InvalidRequest")
    return number


def seconds(value: int | str, maximum: int) -> int:
    try:
        if not str(value).strip().isascii():
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid("expiresIn is a number of seconds", code="InvalidRequest") from None
    if not 1 <= number <= maximum:
        raise Invalid(f"expiresIn must be between 1 and {maximum} seconds", code="InvalidRequest")
    return number
