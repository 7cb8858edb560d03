"""The storage API's errors. Where Supabase Storage has a code its clients branch on, the
code is Supabase's (storage-js tells a missing object by ``NoSuchKey``); the statuses come
from the kinds, through the platform's one mapping."""

from __future__ import annotations

from orgbase.core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)


def invalid_request(message: str) -> Invalid:
    """Supabase Storage's code for a request it cannot take as sent."""
    return Invalid(message, code="InvalidRequest")


def no_such_bucket() -> NotFound:
    return NotFound("Bucket not found", code="NoSuchBucket")


def no_such_key() -> NotFound:
    return NotFound("Object not found", code="NoSuchKey")


def no_such_upload() -> NotFound:
    return NotFound("Upload not found (finished, expired or never started)", code="NoSuchUpload")


def _already_exists(code: str, hint: str | None = None) -> Conflict:
    """Supabase Storage's one message for an object or a bucket that exists (its code says
    which)."""
    return Conflict("The resource already exists", code=code, hint=hint)


def key_exists() -> Conflict:
    return _already_exists("Duplicate", hint="send x-upsert: true (or PUT) to replace it")


def bucket_exists() -> Conflict:
    return _already_exists("BucketAlreadyExists")


def bucket_not_empty() -> Conflict:
    return Conflict(
        "The bucket you tried to delete is not empty",
        code="BucketNotEmpty",
        hint="empty it first: POST /bucket/{id}/empty",
    )


def not_allowed(what: str) -> Forbidden:
    return Forbidden(f"this bucket's policy does not let you {what}", code="AccessDenied")


def signer_gone() -> Forbidden:
    return Forbidden(
        "the signed URL's signer may no longer write in this org (removed, or its key revoked)",
        code="AccessDenied",
    )


def too_large(limit: int, which: str) -> TooLarge:
    return TooLarge(
        f"The object exceeded the maximum allowed size ({which}: {limit} bytes)",
        code="EntityTooLarge",
        details={"limit": limit, "which": which},
    )


def quota_exceeded(limit: int) -> Conflict:
    return Conflict(
        f"this org's files would take more than its {limit} bytes",
        code="storage_quota_exceeded",
        details={"limit": limit},
        hint="delete objects, or ask a platform admin for a larger storage_bytes",
    )


def mime_refused(mime: str, why: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"mime type {mime[:100]} is not allowed: {why}", code="InvalidMimeType"
    )


def range_refused(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        "the range starts past the end of the object", code="InvalidRange", details={"size": size}
    )


def backend_down(what: str = "the file store is unavailable") -> Unavailable:
    return Unavailable(what, code="storage_unavailable", dependency="storage")


def backend_full() -> Unavailable:
    return Unavailable(
        "the file store is out of space",
        code="storage_full",
        dependency="storage",
        hint="nothing was stored; try again once the operator has made room",
    )


def signing_unset() -> Unavailable:
    return Unavailable(
        "signed URLs need a signing key (ORGBASE_STORAGE_SIGNING_KEY)", code="signing_key_unset"
    )
