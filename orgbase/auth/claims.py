"""The claims GoTrue's clients read from an access token (role, aal, amr, session_id,
email, app_metadata, user_metadata), made from the session row and its account's: the
assurance level belongs to the session, so a refresh carries what the session proved and
nothing more."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from orgbase.core.postgres import Connection

_SESSION = "SELECT aal, amr FROM orgbase.sessions WHERE id = $1"
_ADD_METHOD = "UPDATE orgbase.sessions SET amr = amr || $2::jsonb WHERE id = $1 RETURNING aal, amr"
_SIGNED_IN = (
    "UPDATE orgbase.users SET last_sign_in_at = now(), last_org_id = coalesce($2, last_org_id)"
    " WHERE id = $1 RETURNING last_sign_in_at"
)


def _json(value: Any) -> Any:
    # asyncpg hands jsonb over as text unless a codec is set.
    return json.loads(value) if isinstance(value, str) else value


def claims(session_id: UUID, aal: str, amr: Any, account: Mapping[str, Any]) -> dict[str, Any]:
    """``account``: the user's row (its ``email`` and ``user_metadata``)."""
    return {
        "role": "authenticated",
        "aal": aal,
        "amr": _json(amr),
        "session_id": str(session_id),
        "email": account["email"],
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": _json(account["user_metadata"]),
        "is_anonymous": False,
    }


async def session_claims(
    connection: Connection, session_id: UUID, account: Mapping[str, Any]
) -> dict[str, Any]:
    row = await connection.fetchrow(_SESSION, session_id)
    return {} if row is None else claims(session_id, row["aal"], row["amr"], account)


async def add_method(connection: Connection, session_id: UUID, method: str) -> Any:
    """Note in the session how the user proved who they are (its ``amr``); the session's
    level and methods now."""
    entry = json.dumps([{"method": method, "timestamp": int(time.time())}])
    return await connection.fetchrow(_ADD_METHOD, session_id, entry)


async def record_sign_in(
    connection: Connection,
    account: dict[str, Any],
    session_id: UUID,
    method: str,
    org_id: UUID | None,
) -> dict[str, Any]:
    """A sign-in of ``account`` (its row, updated here) into a new session: the claims of
    the session's tokens."""
    session = await add_method(connection, session_id, method)
    account["last_sign_in_at"] = await connection.fetchval(_SIGNED_IN, account["id"], org_id)
    return claims(session_id, session["aal"], session["amr"], account)
