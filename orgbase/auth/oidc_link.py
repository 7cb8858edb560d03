"""Which account a provider's identity signs in, and linking one to an existing account.

A provider signs in only the accounts linked to its identity: one it created (at the
identity's first sign-in, when no account had the address) or one whose owner linked it,
signed in to that account and proving the identity at the provider in the same flow (and
the provider's verified address must be the account's). It never links an existing,
proven account by email alone: that sign-in is a 409 ``identity_link_required``.

One exception, by the design's "the first proof of control ends what was set before it":
an account whose address was never confirmed (perhaps an attacker's pre-registration of
the victim's address) is taken over by the provider's proof of that address, the first
proof there is: its password is removed and its sessions end.

A linked identity can be unlinked by the account's owner, never the last way to sign in.
Both need aal2 once the account has a verified second factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from orgbase.auth.accounts import normalize_email
from orgbase.auth.oidc_tokens import refused
from orgbase.auth.proofs import first_proof
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from orgbase.core.postgres import Connection, Database

_IDENTITIES = """
SELECT id, provider, subject, email, created_at, last_sign_in_at
FROM orgbase.identities WHERE user_id = $1 ORDER BY created_at
"""
_ALIVE = """
SELECT u.email FROM orgbase.users u JOIN orgbase.sessions s ON s.user_id = u.id
WHERE u.id = $1 AND u.deleted_at IS NULL AND s.id = $2
  AND s.revoked_at IS NULL AND s.expires_at > now()
FOR UPDATE OF u
"""


def verified_email(claims: dict[str, Any]) -> str:
    """The address the provider vouches for; an unverified one is never trusted."""
    if claims.get("email_verified") is not True or not isinstance(claims.get("email"), str):
        raise refused(
            "the provider has not verified this account's email", code="oidc_email_not_verified"
        )
    return normalize_email(claims["email"])


def link_required(provider: str) -> Conflict:
    return Conflict(
        "an account with this email exists and is not linked to this provider",
        code="identity_link_required",
        hint=(
            "sign in to that account another way, then link the provider: GET"
            f" /auth/v1/user/identities/authorize?provider={provider} with its access token"
        ),
    )


async def identities_json(connection: Connection, user_id: UUID) -> list[dict[str, Any]]:
    """The account's linked identities, as GoTrue shows them (``user.identities``)."""
    rows = await connection.fetch(_IDENTITIES, user_id)
    return [
        {
            "identity_id": str(r["id"]),
            "id": r["subject"],
            "user_id": str(user_id),
            "provider": r["provider"],
            "identity_data": {"sub": r["subject"], "email": r["email"]},
            "email": r["email"],
            "created_at": r["created_at"].isoformat(),
            "last_sign_in_at": r["last_sign_in_at"].isoformat(),
            "updated_at": r["last_sign_in_at"].isoformat(),
        }
        for r in rows
    ]


@dataclass
class IdentityLinks:
    db: Database
    sessions: SessionStore

    async def account_for(self, provider: str, claims: dict[str, Any], meta: RequestMeta) -> UUID:
        """The account this identity signs in: linked before, else a new one (or an
        unconfirmed one, taken over). A proven account with the address: refused."""
        email, subject = verified_email(claims), str(claims["sub"])
        ended: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            user_id: UUID | None = await connection.fetchval(
                "UPDATE orgbase.identities SET last_sign_in_at = now(), email = $3"
                " WHERE provider = $1 AND subject = $2 RETURNING user_id",
                provider,
                subject,
                email,
            )
            if user_id is None:
                user_id, ended = await self._new_or_unproven(connection, provider, email, meta)
                await self._insert(connection, user_id, provider, subject, email)
                details = {"provider": provider, "took_over_unconfirmed": bool(ended)}
                event = AuditEvent.by_user(user_id, meta, "auth.identity_linked", details=details)
                await audit.record(connection, event)
        await self.sessions.forget(ended)
        return user_id

    async def _new_or_unproven(
        self, connection: Connection, provider: str, email: str, meta: RequestMeta
    ) -> tuple[UUID, list[UUID]]:
        row = await connection.fetchrow(
            "SELECT id, email_confirmed_at FROM orgbase.users"
            " WHERE email = $1 AND deleted_at IS NULL FOR UPDATE",
            email,
        )
        if row is None:
            created: UUID = await connection.fetchval(
                "INSERT INTO orgbase.users (email, email_confirmed_at) VALUES ($1, now())"
                " RETURNING id",
                email,
            )
            return created, []
        if row["email_confirmed_at"] is not None:
            raise link_required(provider)
        # Whoever registered this address never proved it; the provider's proof is the
        # first: what was set before it (the password, the sessions, a pending email
        # change, second factors) ends, as at any first proof of an address.
        ended = await first_proof(connection, self.sessions, row["id"], "oidc", meta)
        return row["id"], ended

    @staticmethod
    async def _insert(
        connection: Connection, user_id: UUID, provider: str, subject: str, email: str
    ) -> None:
        await connection.execute(
            "INSERT INTO orgbase.identities (user_id, provider, subject, email)"
            " VALUES ($1, $2, $3, $4)",
            user_id,
            provider,
            subject,
            email,
        )

    async def link(
        self,
        user_id: UUID,
        session_id: UUID,
        provider: str,
        claims: dict[str, Any],
        meta: RequestMeta,
    ) -> None:
        """Link the identity to the account of the signed-in session that started this
        flow (both sides proven: the session here, the identity at the provider)."""
        email, subject = verified_email(claims), str(claims["sub"])
        async with self.db.system_connection() as connection, connection.transaction():
            account_email = await connection.fetchval(_ALIVE, user_id, session_id)
            if account_email is None:
                raise Unauthorized("the session has ended; sign in again", code="session_revoked")
            if account_email != email:
                raise Forbidden(
                    "the provider's verified address is not this account's",
                    code="identity_email_mismatch",
                    hint="link an identity of the account's own address",
                )
            owner = await connection.fetchval(
                "SELECT user_id FROM orgbase.identities WHERE provider = $1 AND subject = $2",
                provider,
                subject,
            )
            if owner == user_id:
                return
            if owner is not None:
                raise Conflict(
                    "this identity is linked to another account", code="identity_already_exists"
                )
            await self._insert(connection, user_id, provider, subject, email)
            event = AuditEvent.by_user(
                user_id, meta, "auth.identity_linked", details={"provider": provider, "by": "owner"}
            )
            await audit.record(connection, event)

    async def listing(self, principal: Principal) -> list[dict[str, Any]]:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            return await identities_json(connection, user_id)

    async def unlink(self, principal: Principal, identity_id: UUID, meta: RequestMeta) -> None:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            await require_assurance(connection, principal)
            rows = await connection.fetch(
                "SELECT id, provider FROM orgbase.identities WHERE user_id = $1 FOR UPDATE",
                user_id,
            )
            target = next((r for r in rows if r["id"] == identity_id), None)
            if target is None:
                raise NotFound("no such identity on this account", code="identity_not_found")
            has_password = await connection.fetchval(
                "SELECT password_hash IS NOT NULL FROM orgbase.users WHERE id = $1", user_id
            )
            if len(rows) == 1 and not has_password:
                raise Conflict(
                    "this is the account's only way to sign in",
                    code="single_identity_not_deletable",
                    hint="set a password or link another provider first",
                )
            await connection.execute("DELETE FROM orgbase.identities WHERE id = $1", identity_id)
            event = AuditEvent.by_user(
                user_id, meta, "auth.identity_unlinked", details={"provider": target["provider"]}
            )
            await audit.record(connection, event)


async def require_assurance(connection: Connection, principal: Principal) -> None:
    """Adding or removing a way to sign in needs aal2 once the account has a verified
    second factor (a password alone must not change how the account is reached)."""
    has_factor = await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM orgbase.mfa_factors"
        " WHERE user_id = $1 AND status = 'verified')",
        principal.user_id,
    )
    if has_factor and principal.aal != "aal2":
        raise Forbidden(
            "changing how this account signs in needs a session verified with its second"
            " factor (aal2)",
            code="insufficient_aal",
        )
