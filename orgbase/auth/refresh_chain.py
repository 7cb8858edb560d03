"""Refresh tokens as one chain per session: a token's child is sealed in its row.

A rotated token presented again within the grace window gets the same child its first
presentation made (a client's concurrent refresh, a retried request), never a second
token: a thief who replays a stolen token shares the owner's chain, and when the two
diverge past the grace, the session ends. The child is sealed with a pad derived from the
parent's plaintext, which only its holder has (the row keeps the parent's SHA-256, a
different function of it), so reading the table gives no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_PAD_LABEL = b"orgbase refresh token child"


def seal(parent: str, child: str) -> bytes:
    """``child`` (a token of ``secrets.token_urlsafe(32)``) sealed with ``parent``."""
    return _xor(base64.urlsafe_b64decode(child + "=" * (-len(child) % 4)), _pad(parent))


def unseal(parent: str, sealed: bytes) -> str:
    raw = _xor(sealed, _pad(parent))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pad(parent: str) -> bytes:
    return hmac.new(parent.encode(), _PAD_LABEL, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))
