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
from collections.abc import Awaitable, Callable
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
from orgbase.core import audit, destinations, keys
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import Invalid, NotFound, Unauthorized
from orgbase.core.postgres import Connection, Database
from orgbase.core.redis import RedisClients

STATE_SECONDS = 600
SSO_PREFIX = "sso:"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _state_key(state: str) -> str:
    return keys.oidc_state(hashlib.sha256(state.encode()).hexdigest()[:32])


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
    org_destinations: DestinationPolicy = field(
        default_factory=lambda: DestinationPolicy(allowed_hosts=frozenset(), allow_loopback=False)
    )
    """Where an org's own provider may be fetched: its URLs are written by org admins."""
    _metadata: dict[tuple[str, bool], ProviderMetadata] = field(default_factory=dict)
    on_member_added: list[Callable[[UUID, UUID, Any], Awaitable[None]]] = field(
        default_factory=list
    )
    """Told about memberships made at a first SSO sign-in (the membership cache)."""

    @property
    def callback_url(self) -> str:
        return self.public_url.rstrip("/") + "/auth/v1/callback"

    def metadata(self, provider: ProviderConfig) -> ProviderMetadata:
        """Discovery and keys of the provider's issuer; an org's provider (``sso:``) has
        every URL it names checked before it is fetched."""
        guarded = provider.name.startswith(SSO_PREFIX)
        key = (provider.issuer, guarded)
        if key not in self._metadata:
            check = self._checked_destination if guarded else None
            self._metadata[key] = ProviderMetadata(provider.issuer, self.http, check)
        return self._metadata[key]

    async def _checked_destination(self, url: str) -> None:
        """An org's provider may not make the gateway fetch an internal address (the cloud
        metadata service, our own databases): every address its host resolves to must be
        public. The fetch resolves the name again, so a name that changes its answer in
        between (DNS rebinding) is not caught here; webhooks, which pin the address, are."""
        try:
            await destinations.resolve(url, self.org_destinations)
        except Invalid as exc:
            raise Invalid(
                f"The org's sign-in provider cannot be reached: {exc.message}",
                code="sso_provider_refused",
                hint="The provider's URLs must be public https addresses.",
            ) from None

    async def _post(self, provider: ProviderConfig, url: str, **kwargs: Any) -> httpx.Response:
        if provider.name.startswith(SSO_PREFIX):
            await self._checked_destination(url)
        return await self.http.post(url, **kwargs)

    async def provider(self, name: str) -> ProviderConfig:
        """The operator's provider of that name, or ``sso:<org id>``: an org's own."""
        found = self.providers.get(name)
        if found is None and name.startswith(SSO_PREFIX):
            found = await self._org_provider(name)
        if found is None:
            raise NotFound("no such sign-in provider", code="oidc_provider_not_found")
        return found

    async def _org_provider(self, name: str) -> ProviderConfig | None:
        try:
            org_id = UUID(name.removeprefix(SSO_PREFIX))
        except ValueError:
            return None
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                "SELECT issuer, client_id, client_secret FROM orgbase.org_sso s"
                " JOIN orgbase.orgs o ON o.id = s.org_id AND o.deleted_at IS NULL"
                " WHERE s.org_id = $1",
                org_id,
            )
        if row is None:
            return None
        return ProviderConfig(
            name=name,
            issuer=row["issuer"],
            client_id=row["client_id"],
            client_secret=row["client_secret"],
            # A refresh token from the provider: each refresh here asks it again.
            scopes="openid email profile offline_access",
        )

    async def provider_for_domain(self, raw_domain: str) -> ProviderConfig:
        """The SSO provider of the org that verified this email domain."""
        domain = raw_domain.strip().lower().rstrip(".")
        async with self.db.system_connection() as connection:
            org_id = await connection.fetchval(
                "SELECT d.org_id FROM orgbase.org_sso_domains d"
                " JOIN orgbase.org_sso s ON s.org_id = d.org_id"
                " WHERE d.domain = $1 AND d.verified_at IS NOT NULL",
                domain,
            )
        if org_id is None:
            raise NotFound("no SSO provider for this domain", code="sso_provider_not_found")
        return await self.provider(f"{SSO_PREFIX}{org_id}")

    async def authorize(
        self, provider: ProviderConfig, redirect_to: str, extra: dict[str, Any] | None = None
    ) -> str:
        """The provider's authorization URL for a new sign-in (its state stored)."""
        document = await self.metadata(provider).load()
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
        metadata = self.metadata(provider)
        document = await metadata.load()
        try:
            response = await self._post(
                provider,
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
        stored["provider_refresh_token"] = answer.get("refresh_token")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise refused("the provider sent no ID token")
        claims = await metadata.verify_id_token(id_token, provider.client_id, stored["nonce"])
        if "email" not in claims and isinstance(answer.get("access_token"), str):
            claims = {
                **await self._userinfo(provider, document, answer["access_token"], claims),
                **claims,
            }
        return claims

    async def _userinfo(
        self,
        provider: ProviderConfig,
        document: dict[str, Any],
        access_token: str,
        claims: dict[str, Any],
    ) -> dict[str, Any]:
        """Providers may keep the email out of the ID token (OIDC Core 5.4): ask the
        userinfo endpoint, for the same subject only."""
        endpoint = document.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        if provider.name.startswith(SSO_PREFIX):
            await self._checked_destination(endpoint)
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
        provider = await self.provider(stored["provider"])
        claims = await self.exchange(provider, code, stored)
        if not provider.name.startswith(SSO_PREFIX):
            user_id = await self.link(provider.name, claims, meta)
            tokens = await self.grants.open_session(user_id, "oauth", meta)
            return SignedIn(tokens, stored["redirect_to"], provider, claims)
        org_id = UUID(provider.name.removeprefix(SSO_PREFIX))
        await self._check_domain(org_id, claims)
        user_id = await self.link(provider.name, claims, meta)
        role = await self._provision(org_id, user_id, meta)
        tokens = await self.grants.open_session(
            user_id,
            "sso/oidc",
            meta,
            org_id,
            sso=(org_id, stored.get("provider_refresh_token")),
        )
        if role is not None:
            for listener in self.on_member_added:
                await listener(org_id, user_id, role)
        return SignedIn(tokens, stored["redirect_to"], provider, claims)

    async def _check_domain(self, org_id: UUID, claims: dict[str, Any]) -> None:
        """An org's provider speaks only for the org's verified domains: anything else
        would let an org admin's provider sign in as anybody."""
        email = claims.get("email")
        domain = email.rpartition("@")[2].lower() if isinstance(email, str) else ""
        async with self.db.system_connection() as connection:
            ours = await connection.fetchval(
                "SELECT 1 FROM orgbase.org_sso_domains"
                " WHERE domain = $1 AND org_id = $2 AND verified_at IS NOT NULL",
                domain,
                org_id,
            )
        if not ours:
            raise refused(
                "the org's provider may sign in only its verified email domains",
                code="sso_domain_mismatch",
            )

    async def _provision(self, org_id: UUID, user_id: UUID, meta: RequestMeta) -> str | None:
        """First sign-in through the org's provider: a membership with its default role.
        Returns the role when one was made."""
        async with self.db.system_connection() as connection, connection.transaction():
            role: str | None = await connection.fetchval(
                "INSERT INTO orgbase.memberships (org_id, user_id, role)"
                " SELECT org_id, $2, default_role FROM orgbase.org_sso WHERE org_id = $1"
                " ON CONFLICT DO NOTHING RETURNING role",
                org_id,
                user_id,
            )
            if role is not None:
                event = AuditEvent.by_user(
                    user_id, meta, "member.provisioned", org_id=org_id, details={"role": role}
                )
                await audit.record(connection, event)
        return role

    async def refresh_at_provider(self, org_id: UUID, refresh_token: str | None) -> str | None:
        """At each refresh of an SSO session: the provider must still know the user (a
        user removed there loses the session here). Returns the provider's new refresh
        token; raises when the provider refuses."""
        ended = Unauthorized(
            "the org's provider no longer signs this user in", code="sso_session_ended"
        )
        if not refresh_token:
            raise ended
        provider = await self.provider(f"{SSO_PREFIX}{org_id}")
        document = await self.metadata(provider).load()
        try:
            response = await self._post(
                provider,
                document["token_endpoint"],
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(provider.client_id, provider.client_secret),
            )
        except httpx.HTTPError:
            raise unavailable("the OpenID provider did not answer") from None
        if response.status_code >= 500:
            raise unavailable(f"the OpenID provider answered {response.status_code}")
        if response.status_code != 200:
            raise ended
        new_token = response.json().get("refresh_token")
        return new_token if isinstance(new_token, str) else refresh_token

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
