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
from typing import Any
from uuid import UUID

from orgbase.auth.opening import SessionOpener
from orgbase.core.errors import Unauthorized
from orgbase.core.postgres import Connection

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


async def next_in_chain(
    opener: SessionOpener, connection: Connection, token: str, row: Any, active_org: UUID | None
) -> str:
    """The token that follows ``token`` (its refresh row ``row``, locked) in its session's
    chain: made (and sealed in the parent's row) at its first presentation; the same one
    again inside the grace window, never a sibling (one session, one chain)."""
    if row["rotated_at"] is not None:
        sealed: bytes | None = row["child_sealed"]
        if sealed is None:  # rotated before children were kept: never a second chain
            raise Unauthorized("the refresh token is invalid", code="invalid_refresh_token")
        return unseal(token, sealed)
    child = await opener.new_refresh_token(
        connection, row["session_id"], active_org, row["session_expires_at"], row["id"]
    )
    await connection.execute(
        "UPDATE orgbase.refresh_tokens SET rotated_at = now(), child_sealed = $2 WHERE id = $1",
        row["id"],
        seal(token, child),
    )
    return child
