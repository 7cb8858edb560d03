"""A user as GoTrue's API shows one (what Supabase's clients parse), from the database or,
for the answer to a sign-up, from the account just made (or its stand-in: the answer for
an address that has an account must look like the answer for a new one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from orgbase.auth.oidc_link import identities_json
from orgbase.auth.schemas import User
from orgbase.core.errors import Unauthorized
from orgbase.core.postgres import Connection

_USER = """
SELECT id, email, email_confirmed_at, last_sign_in_at, user_metadata, new_email,
       created_at, updated_at
FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL
"""
_FACTORS = """
SELECT id, friendly_name, factor_type, status, created_at, updated_at
FROM orgbase.mfa_factors WHERE user_id = $1 ORDER BY created_at
"""
_SENT = """
SELECT purpose, max(created_at) AS sent_at FROM orgbase.auth_codes
WHERE user_id = $1 GROUP BY purpose
"""


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _shape(
    row: dict[str, Any],
    sent: dict[str, Any],
    factors: list[dict[str, Any]],
    identities: list[dict[str, Any]],
) -> dict[str, Any]:
    confirmed = _iso(row["email_confirmed_at"])
    return {
        "id": str(row["id"]),
        "aud": "authenticated",
        "role": "authenticated",
        "email": row["email"],
        "phone": "",
        "email_confirmed_at": confirmed,
        "confirmed_at": confirmed,
        "confirmation_sent_at": _iso(sent.get("signup")),
        "recovery_sent_at": _iso(sent.get("recovery")),
        "email_change_sent_at": _iso(sent.get("email_change")),
        "new_email": row["new_email"],
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": {
            "provider": "email",
            "providers": ["email", *sorted({i["provider"] for i in identities})],
        },
        "user_metadata": row["user_metadata"],
        "identities": identities,
        "factors": [
            {
                "id": str(f["id"]),
                "friendly_name": f["friendly_name"],
                "factor_type": f["factor_type"],
                "status": f["status"],
                "created_at": _iso(f["created_at"]),
                "updated_at": _iso(f["updated_at"]),
            }
            for f in factors
        ],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": False,
        "is_sso_user": False,
    }


async def user_json(
    connection: Connection, user_id: UUID, account: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A user as GoTrue shows one. ``account``: its row, when the caller read it in the
    transaction that just signed it in."""
    row = account if account is not None else await connection.fetchrow(_USER, user_id)
    if row is None:
        raise Unauthorized("the account no longer exists", code="session_revoked")
    factors = [dict(f) for f in await connection.fetch(_FACTORS, user_id)]
    identities = await identities_json(connection, user_id)
    sent = {r["purpose"]: r["sent_at"] for r in await connection.fetch(_SENT, user_id)}
    values = dict(row)
    metadata = values["user_metadata"]
    values["user_metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
    return _shape(values, sent, factors, identities)


def signed_up_json(user: User, metadata: dict[str, Any]) -> dict[str, Any]:
    """The answer to a sign-up that waits for its confirmation: the same for a new
    account and for the stand-in of a known address (GoTrue's shape, as it answers with
    confirmation on)."""
    values = {
        "id": user.id,
        "email": user.email,
        "email_confirmed_at": None,
        "last_sign_in_at": None,
        "user_metadata": metadata,
        "new_email": None,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
    return _shape(values, {"signup": datetime.now(UTC)}, [], [])
