"""Sign-in with an OpenID provider: authorization code + PKCE, ``state`` and ``nonce``
(GoTrue's ``/authorize`` and ``/callback``).

The state is single use (kept in Redis under a hash of itself, taken with GETDEL), so a
replayed callback is refused; the nonce and the PKCE verifier live with it. Accounts are
linked by the provider's subject, the first time by email, and only by an email the
provider says it verified. Linking to a local account that never confirmed its email (it
may be an attacker's pre-registration of the victim's address) takes that account over:
its password is removed and its sessions end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
from redis.asyncio import Redis

from orgbase.auth.accounts import normalize_email
from orgbase.auth.grants import TokenGrants
from orgbase.auth.oidc_tokens import ProviderConfig, ProviderMetadata, refused, unavailable
from orgbase.auth.schemas import TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta
from orgbase.core.errors import Invalid, NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.core.redis import RedisClients

STATE_SECONDS = 600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _state_key(state: str) -> str:
    # The hash tag names the owner: one sign-in attempt.
    return f"oidc:state:{{{hashlib.sha256(state.encode()).hexdigest()[:32]}}}"


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenResponse
    redirect_to: str
    provider: ProviderConfig
    claims: dict[str, Any]


@dataclass
class OidcSignIn:
    db: Database
    redis: RedisClients
    grants: TokenGrants
    sessions: SessionStore
    public_url: str
    providers: dict[str, ProviderConfig]
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))
    _metadata: dict[str, ProviderMetadata] = field(default_factory=dict)

    @property
    def callback_url(self) -> str:
        return self.public_url.rstrip("/") + "/auth/v1/callback"

    def metadata(self, issuer: str) -> ProviderMetadata:
        if issuer not in self._metadata:
            self._metadata[issuer] = ProviderMetadata(issuer, self.http)
        return self._metadata[issuer]

    def provider(self, name: str) -> ProviderConfig:
        found = self.providers.get(name)
        if found is None:
            raise NotFound("no such sign-in provider", code="oidc_provider_not_found")
        return found

    async def authorize(
        self, provider: ProviderConfig, redirect_to: str, extra: dict[str, Any] | None = None
    ) -> str:
        """The provider's authorization URL for a new sign-in (its state stored)."""
        document = await self.metadata(provider.issuer).load()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        stored = json.dumps(
            {
                "provider": provider.name,
                "nonce": nonce,
                "verifier": verifier,
                "redirect_to": redirect_to,
                **(extra or {}),
            }
        )
        key = _state_key(state)
        await self.redis.run(lambda r: r.set(key, stored, ex=STATE_SECONDS))
        query = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": self.callback_url,
            "scope": provider.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        return f"{document['authorization_endpoint']}?{urlencode(query)}"

    async def take_state(self, state: str) -> dict[str, Any]:
        invalid = Invalid(
            "the sign-in state is unknown, used or expired", code="oidc_state_invalid"
        )
        if not (20 <= len(state) <= 200) or not state.isascii():
            raise invalid
        key = _state_key(state)

        async def take(r: Redis) -> Any:
            return await r.getdel(key)

        raw = await self.redis.run(take)
        if raw is None:
            raise invalid
        stored: dict[str, Any] = json.loads(raw)
        return stored

    async def exchange(
        self, provider: ProviderConfig, code: str, stored: dict[str, Any]
    ) -> dict[str, Any]:
        """The code for tokens (with the PKCE verifier), then the ID token's claims."""
        metadata = self.metadata(provider.issuer)
        document = await metadata.load()
        try:
            response = await self.http.post(
                document["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.callback_url,
                    "code_verifier": stored["verifier"],
                },
                auth=(provider.client_id, provider.client_secret),
            )
        except httpx.HTTPError:
            raise unavailable("the OpenID provider did not answer") from None
        if response.status_code != 200:
            raise refused("the provider refused the authorization code", code="oidc_code_rejected")
        answer = response.json()
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise refused("the provider sent no ID token")
        claims = await metadata.verify_id_token(id_token, provider.client_id, stored["nonce"])
        if "email" not in claims and isinstance(answer.get("access_token"), str):
            claims = {**await self._userinfo(document, answer["access_token"], claims), **claims}
        return claims

    async def _userinfo(
        self, document: dict[str, Any], access_token: str, claims: dict[str, Any]
    ) -> dict[str, Any]:
        """Providers may keep the email out of the ID token (OIDC Core 5.4): ask the
        userinfo endpoint, for the same subject only."""
        endpoint = document.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        try:
            response = await self.http.get(
                endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError:
            raise unavailable("the OpenID provider did not answer") from None
        if response.status_code != 200:
            return {}
        info = response.json()
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            raise refused("the userinfo answer is about another subject")
        return {k: info[k] for k in ("email", "email_verified", "name") if k in info}

    async def callback(self, code: str, state: str, meta: RequestMeta) -> SignedIn:
        stored = await self.take_state(state)
        provider = self.provider(stored["provider"])
        claims = await self.exchange(provider, code, stored)
        user_id = await self.link(provider.name, claims, meta)
        tokens = await self.grants.open_session(user_id, "oauth", meta)
        return SignedIn(tokens, stored["redirect_to"], provider, claims)

    async def link(self, provider: str, claims: dict[str, Any], meta: RequestMeta) -> UUID:
        """The user of this provider account: linked before, or by its verified email, or
        new. An unverified email is never trusted (account takeover)."""
        if claims.get("email_verified") is not True or not isinstance(claims.get("email"), str):
            raise refused(
                "the provider has not verified this account's email",
                code="oidc_email_not_verified",
            )
        email = normalize_email(claims["email"])
        subject = str(claims["sub"])
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
                user_id, ended = await self._by_email(connection, email, meta)
                await connection.execute(
                    "INSERT INTO orgbase.identities (user_id, provider, subject, email)"
                    " VALUES ($1, $2, $3, $4)",
                    user_id,
                    provider,
                    subject,
                    email,
                )
                details = {"provider": provider, "took_over_unconfirmed": bool(ended)}
                event = AuditEvent.by_user(user_id, meta, "auth.identity_linked", details=details)
                await audit.record(connection, event)
        await self.sessions.forget(ended)
        return user_id

    async def _by_email(
        self, connection: Connection, email: str, meta: RequestMeta
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
            return row["id"], []
        # Whoever registered this address never proved it; the provider did: the account
        # is the provider account's owner's now, without the unproven password.
        await connection.execute(
            "UPDATE orgbase.users SET password_hash = NULL, email_confirmed_at = now(),"
            " updated_at = now() WHERE id = $1",
            row["id"],
        )
        ended = await self.sessions.revoke_for_user(connection, row["id"], "identity_takeover")
        return row["id"], ended

    async def close(self) -> None:
        await self.http.aclose()
