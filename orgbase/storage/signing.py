"""Signed URLs: an HMAC-SHA256 token over what it grants (read or upload), the org, the
bucket, the object's name, the expiry and, for uploads, the signer and whether it may
replace. The key comes from the settings; a token whose MAC or binding does not match, or
that has expired, is refused with a code."""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Literal
from uuid import UUID

import msgspec

from orgbase.core.errors import Invalid
from orgbase.storage import errors

Kind = Literal["read", "upload"]


class Grant(msgspec.Struct, frozen=True, array_like=True):
    kind: Kind
    org: UUID
    bucket: str
    name: str
    expires: int
    signer: UUID | None = None
    upsert: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bad_token(why: str) -> Invalid:
    return Invalid(f"the signed URL is not valid: {why}", code="InvalidSignature")


@dataclass(frozen=True)
class Signer:
    key: bytes | None

    @classmethod
    def from_setting(cls, key: str | None, *, dev: bool) -> Signer:
        if key is not None:
            return cls(key.encode())
        # Dev mode without a key: one for this process (links die with it).
        return cls(secrets.token_bytes(32) if dev else None)

    def _mac(self, payload: bytes) -> bytes:
        if self.key is None:
            raise errors.signing_unset()
        return hmac.new(self.key, payload, sha256).digest()

    def sign(self, grant: Grant) -> str:
        payload = msgspec.json.encode(grant)
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, kind: Kind, bucket: str, name: str) -> Grant:
        if not token or len(token) > 4096 or token.count(".") != 1:
            raise bad_token("malformed")
        body, mac = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (ValueError, TypeError):
            raise bad_token("malformed") from None
        if not hmac.compare_digest(self._mac(payload), given):
            raise bad_token("the signature does not match")
        try:
            grant = msgspec.json.decode(payload, type=Grant)
        except msgspec.MsgspecError:
            raise bad_token("malformed") from None
        if (grant.kind, grant.bucket, grant.name) != (kind, bucket, name):
            raise bad_token("it was signed for another object")
        if grant.expires < time.time():
            raise Invalid("the signed URL has expired", code="ExpiredSignature")
        return grant
