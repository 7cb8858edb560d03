"""Supabase Auth's accounts into orgbase's (``orgbase import supabase``, the accounts part).

Read from the source's ``auth.users``, ``auth.identities`` and ``auth.mfa_factors`` (the
columns GoTrue documents), written with their ids (an app's rows point at them), in the
caller's transaction. A user keeps their bcrypt hash: the next sign-in verifies it and
rehashes the password with argon2id (``passwords.py``), so nobody resets a password. The
confirmation state, the metadata and the sign-in times come along; OIDC links become
identities (the ``email`` ones are the account itself); verified TOTP factors keep their
secret. Everything is written with ON CONFLICT DO NOTHING: a second run adds nothing.

What cannot come is said, with the reason: a user without an email (phone-only or
anonymous), a password hash of a format orgbase does not verify, an address that another
account already has, a factor that is not TOTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from orgbase.auth.passwords import is_bcrypt

# The accounts come as the arguments of their inserts (``_ADD_*``), in order: a row is
# written as it was read.
_USERS = """
SELECT id,
       CASE WHEN coalesce(is_anonymous, false) THEN NULL ELSE lower(email) END AS email,
       nullif(encrypted_password, '') AS encrypted_password, email_confirmed_at,
       last_sign_in_at, coalesce(raw_user_meta_data, '{}')::text AS metadata, created_at,
       updated_at
FROM auth.users WHERE deleted_at IS NULL ORDER BY created_at, id
"""
_IDENTITIES = """
SELECT i.id, i.user_id, i.provider, i.provider_id, lower(coalesce(i.identity_data ->> 'email',
       u.email)) AS email, i.created_at, i.last_sign_in_at
FROM auth.identities i JOIN auth.users u ON u.id = i.user_id
WHERE u.deleted_at IS NULL ORDER BY i.created_at, i.id
"""
_FACTORS = """
SELECT id, user_id, coalesce(friendly_name, 'totp') AS friendly_name, secret,
       status::text AS status, created_at, updated_at
FROM auth.mfa_factors WHERE factor_type::text = 'totp' AND coalesce(secret, '') <> ''
ORDER BY created_at, id
"""
_OTHER_FACTORS = """
SELECT id, factor_type::text AS type FROM auth.mfa_factors
WHERE factor_type::text <> 'totp' OR coalesce(secret, '') = ''
ORDER BY created_at, id
"""
_SOURCE_COLUMNS = """
SELECT count(*) FROM information_schema.columns
WHERE table_schema = 'auth' AND table_name = 'users'
  AND column_name IN ('id', 'email', 'encrypted_password', 'email_confirmed_at')
"""
_TAKEN = "SELECT lower(email) AS email, id FROM orgbase.users WHERE email = ANY($1::text[])"
_ADD_USER = """
INSERT INTO orgbase.users (id, email, password_hash, email_confirmed_at, last_sign_in_at,
                           user_metadata, created_at, updated_at)
SELECT $1, $2, $3, $4, $5, $6::jsonb, coalesce($7, now()), coalesce($8, now())
ON CONFLICT DO NOTHING
"""
_ADD_IDENTITY = """
INSERT INTO orgbase.identities (id, user_id, provider, subject, email, created_at,
                                last_sign_in_at)
SELECT $1, $2, $3, $4, $5, coalesce($6, now()), coalesce($7, now())
WHERE EXISTS (SELECT 1 FROM orgbase.users WHERE id = $2)
ON CONFLICT DO NOTHING
"""
_ADD_FACTOR = """
INSERT INTO orgbase.mfa_factors (id, user_id, friendly_name, secret, status, created_at,
                                 updated_at)
SELECT $1, $2, $3, $4, $5, $6, $7
WHERE EXISTS (SELECT 1 FROM orgbase.users WHERE id = $2)
ON CONFLICT DO NOTHING
"""


@dataclass
class Accounts:
    """What the source holds, split into what comes and what cannot (with why)."""

    users: list[asyncpg.Record] = field(default_factory=list)
    identities: list[asyncpg.Record] = field(default_factory=list)
    factors: list[asyncpg.Record] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, kind: str, key: Any, why: str) -> None:
        self.refused.append({"kind": kind, "id": str(key), "reason": why})


async def is_supabase(source: asyncpg.Connection) -> bool:
    """The source has GoTrue's auth.users (the columns this import reads)."""
    return bool(await source.fetchval(_SOURCE_COLUMNS) == 4)


async def read_accounts(source: asyncpg.Connection, target: asyncpg.Connection) -> Accounts:
    found = Accounts()
    rows = await source.fetch(_USERS)
    taken = {r["email"]: r["id"] for r in await target.fetch(_TAKEN, [r["email"] for r in rows])}
    for row in rows:
        why = _refusal(row, taken)
        if why:
            found.refuse("user", row["id"], why)
        else:
            found.users.append(row)
    coming = {r["id"] for r in found.users}
    for identity in await source.fetch(_IDENTITIES):
        if identity["provider"] != "email" and identity["user_id"] in coming:
            found.identities.append(identity)
    for factor in await source.fetch(_OTHER_FACTORS):
        found.refuse("factor", factor["id"], f"a {factor['type']} factor (only TOTP comes)")
    for factor in await source.fetch(_FACTORS):
        if factor["user_id"] in coming:
            found.factors.append(factor)
    return found


def _refusal(row: asyncpg.Record, taken: dict[str, Any]) -> str | None:
    if not row["email"]:  # none, or an anonymous user's
        return "no email address (phone-only or anonymous users are not imported)"
    owner = taken.get(row["email"])
    if owner is not None and owner != row["id"]:
        return "another account here has this email address"
    hashed = row["encrypted_password"]
    if hashed and not (is_bcrypt(hashed) or hashed.startswith("$argon2")):
        return f"a password hash orgbase does not verify ({hashed[:4]}...)"
    return None


async def write_accounts(target: asyncpg.Connection, accounts: Accounts) -> dict[str, int]:
    """In the caller's transaction; how many of each were new."""
    return {
        "users": await _insert_each(target, _ADD_USER, accounts.users),
        "identities": await _insert_each(target, _ADD_IDENTITY, accounts.identities),
        "factors": await _insert_each(target, _ADD_FACTOR, accounts.factors),
    }


async def _insert_each(
    target: asyncpg.Connection, statement: str, rows: list[asyncpg.Record]
) -> int:
    """Each row (its columns are the statement's arguments); how many were new."""
    added = 0
    for row in rows:
        added += int((await target.execute(statement, *row.values())).split()[-1])
    return added
