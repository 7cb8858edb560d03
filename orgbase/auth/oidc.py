"""Sign-in with an OpenID provider: authorization code + PKCE, ``state`` and ``nonce``
(GoTrue's ``/authorize`` and ``/callback``), for the operator's providers and for an org's
own (``sso:<org id>``).

The state is single use and bound to the browser that started the flow (``oidc_state``);
the provider is spoken to by ``oidc_exchange``; which account an identity signs in, and
linking one to an existing account, is ``oidc_link``'s. An org's provider speaks only for
the email domains that org proved, and its first sign-in of an account makes the account
a member of the org, bound to its SSO.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from orgbase.auth.grants import TokenGrants
from orgbase.auth.oidc_exchange import SSO_PREFIX, ProviderClient, is_org_provider
from orgbase.auth.oidc_link import IdentityLinks, require_assurance
from orgbase.auth.oidc_state import FlowStates, Started
from orgbase.auth.oidc_tokens import ProviderConfig, refused
from orgbase.auth.schemas import TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.domains import domain_name
from orgbase.core.errors import Invalid, NotFound, Unauthorized
from orgbase.core.orgs import OrgSso
from orgbase.core.postgres import Connection, Database

__all__ = ["SSO_PREFIX", "OidcSignIn", "SignedIn"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenResponse
    redirect_to: str
    provider: ProviderConfig
    claims: dict[str, Any]


@dataclass
class OidcSignIn:
    db: Database
    grants: TokenGrants
    sessions: SessionStore
    public_url: str
    providers: dict[str, ProviderConfig]
    states: FlowStates
    client: ProviderClient
    sso: OrgSso
    """The tenancy area's: orgs' providers, their proven domains, their new members."""
    links: IdentityLinks = field(init=False)

    def __post_init__(self) -> None:
        self.links = IdentityLinks(self.db, self.sessions)

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
        found = await self.sso.provider(org_id)
        if found is None:
            return None
        return ProviderConfig(
            name=name,
            issuer=found.issuer,
            client_id=found.client_id,
            client_secret=found.client_secret,
            # A refresh token from the provider: each refresh here asks it again.
            scopes="openid email profile offline_access",
        )

    async def provider_for_domain(self, raw_domain: str) -> ProviderConfig:
        """The SSO provider of the org that verified this email domain."""
        org_id = await self.sso.org_of_domain(domain_name(raw_domain))
        if org_id is None:
            raise NotFound("no SSO provider for this domain", code="sso_provider_not_found")
        return await self.provider(f"{SSO_PREFIX}{org_id}")

    def start_url(self, provider: str, redirect_to: str, ticket: str | None = None) -> str:
        """Our own /authorize for a flow started by an API call (it answers ``{url}``): the
        browser that opens it gets the state's cookie."""
        query = {"provider": provider, "redirect_to": redirect_to}
        if ticket is not None:
            query["link_ticket"] = ticket
        return f"{self.public_url.rstrip('/')}/auth/v1/authorize?{urlencode(query)}"

    async def start_link(self, principal: Principal, provider_name: str, redirect_to: str) -> str:
        """Linking a provider to the signed-in account: the URL to open in its browser."""
        user_id, session_id = principal.require_user()
        provider = await self.provider(provider_name)
        async with self.db.system_connection() as connection:
            await require_assurance(connection, principal)
        ticket = await self.states.new_ticket(
            {"user": str(user_id), "session": str(session_id), "provider": provider.name}
        )
        return self.start_url(provider.name, redirect_to, ticket)

    async def authorize(
        self, provider: ProviderConfig, redirect_to: str, link_ticket: str | None = None
    ) -> tuple[str, Started]:
        """The provider's authorization URL for a new flow, and the flow's state (whose
        ``binding`` goes into the browser's cookie)."""
        document = await self.client.metadata(provider).load()
        nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        flow: dict[str, Any] = {
            "provider": provider.name,
            "nonce": nonce,
            "verifier": verifier,
            "redirect_to": redirect_to,
        }
        if link_ticket is not None:
            link = await self.states.take_ticket(link_ticket)
            if link["provider"] != provider.name:
                raise Invalid("the link ticket is for another provider", code="oidc_state_invalid")
            flow["link"] = link
        started = await self.states.begin(flow)
        query = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": self.client.callback_url,
            "scope": provider.scopes,
            "state": started.state,
            "nonce": nonce,
            "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        return f"{document['authorization_endpoint']}?{urlencode(query)}", started

    async def callback(self, code: str, stored: dict[str, Any], meta: RequestMeta) -> SignedIn:
        """``stored``: the flow taken by its state (``states.take``)."""
        provider = await self.provider(stored["provider"])
        claims = await self.client.exchange(provider, code, stored)
        org_id = UUID(provider.name.removeprefix(SSO_PREFIX)) if is_org_provider(provider) else None
        if org_id is not None:
            await self._check_domain(org_id, claims)
        link = stored.get("link")
        if link is not None:
            user_id = UUID(link["user"])
            await self.links.link(user_id, UUID(link["session"]), provider.name, claims, meta)
        else:
            user_id = await self.links.account_for(provider.name, claims, meta)
        if org_id is None:
            usual = await self.grants.usual_org_of(user_id)
            tokens = (await self.grants.open_session(user_id, "oauth", meta, usual)).tokens
            return SignedIn(tokens, stored["redirect_to"], provider, claims)
        # First sign-in through the org's provider: a membership with its default role.
        await self.sso.provision(org_id, user_id, meta)
        sso = (org_id, stored.get("provider_refresh_token"))
        opened = await self.grants.open_session(user_id, "sso/oidc", meta, org_id, sso=sso)
        tokens = opened.tokens
        return SignedIn(tokens, stored["redirect_to"], provider, claims)

    async def _check_domain(self, org_id: UUID, claims: dict[str, Any]) -> None:
        """An org's provider speaks only for the org's verified domains: anything else
        would let an org admin's provider sign in as anybody."""
        email = claims.get("email")
        domain = email.rpartition("@")[2].lower() if isinstance(email, str) else ""
        if not await self.sso.speaks_for(org_id, domain):
            raise refused(
                "the org's provider may sign in only its verified email domains",
                code="sso_domain_mismatch",
            )

    async def refresh_at_provider(self, org_id: UUID, refresh_token: str | None) -> str | None:
        """At each refresh of an SSO session: the provider must still know the user (a
        user removed there loses the session here). Returns the provider's new refresh
        token; raises when the provider refuses."""
        if not refresh_token:
            raise Unauthorized(
                "the org's provider no longer signs this user in", code="sso_session_ended"
            )
        provider = await self.provider(f"{SSO_PREFIX}{org_id}")
        return await self.client.refresh(provider, refresh_token)

    async def org_provider_replaced(
        self, connection: Connection, org_id: UUID
    ) -> Callable[[], Awaitable[None]]:
        """The org's provider changed issuer or was removed (in that change's transaction):
        a subject means something only at its own issuer, so the accounts' links to the old
        provider go, and so do the sessions it signed in. Returns what to do after commit."""
        await connection.execute(
            "DELETE FROM orgbase.identities WHERE provider = $1", f"{SSO_PREFIX}{org_id}"
        )
        ended = await self.sessions.revoke_signed_in_by(connection, org_id, "sso_provider_replaced")
        return lambda: self.sessions.forget(ended)

    async def close(self) -> None:
        await self.client.close()
