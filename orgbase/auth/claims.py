"""The claims GoTrue's clients read from an access token (role, aal, amr, session_id,
email, app_metadata, user_metadata), made from the session row: the assurance level
belongs to the session, so a refresh carries what the session proved and nothing more."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from orgbase.core.postgres import Connection

_CLAIMS = """
SELECT u.email, u.user_metadata, s.aal, s.amr
FROM orgbase.sessions s JOIN orgbase.users u ON u.id = s.user_id
WHERE s.id = $1
"""


def _json(value: Any) -> Any:
    # asyncpg hands jsonb over as text unless a codec is set.
    return json.loads(value) if isinstance(value, str) else value


async def session_claims(connection: Connection, session_id: UUID) -> dict[str, Any]:
    row = await connection.fetchrow(_CLAIMS, session_id)
    if row is None:
        return {}
    return {
        "role": "authenticated",
        "aal": row["aal"],
        "amr": _json(row["amr"]),
        "session_id": str(session_id),
        "email": row["email"],
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": _json(row["user_metadata"]),
        "is_anonymous": False,
    }


async def add_method(connection: Connection, session_id: UUID, method: str) -> None:
    """Note in the session how the user proved who they are (its ``amr``)."""
    entry = json.dumps([{"method": method, "timestamp": int(time.time())}])
    await connection.execute(
        "UPDATE orgbase.sessions SET amr = amr || $2::jsonb WHERE id = $1", session_id, entry
    )


async def record_sign_in(
    connection: Connection, user_id: UUID, session_id: UUID, method: str, org_id: UUID | None
) -> None:
    await add_method(connection, session_id, method)
    await connection.execute(
        "UPDATE orgbase.users SET last_sign_in_at = now(),"
        " last_org_id = coalesce($2, last_org_id) WHERE id = $1",
        user_id,
        org_id,
    )
