"""Talking to an OpenID provider: its metadata (cached), the code exchange, userinfo and
the refresh of an org's SSO session.

An org's own provider (``sso:<org>``) is a URL an org owner wrote: every URL it names is
checked before it is fetched (no internal addresses). A provider answering garbage (not
JSON, not an object) is a 502 ``oidc_provider_bad_answer``; one not answering is a 503.

The email and whether the provider verified it are taken from ONE source: the ID token
when it carries an email, else the userinfo answer (never the address from one and the
verification from the other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from orgbase.auth.oidc_tokens import (
    ProviderConfig,
    ProviderMetadata,
    check_claims,
    json_object,
    refused,
    unavailable,
)
from orgbase.core import destinations
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import BadGateway, Invalid, Unauthorized, Unavailable

SSO_PREFIX = "sso:"
EMAIL_CLAIMS = ("email", "email_verified")


def is_org_provider(provider: ProviderConfig) -> bool:
    return provider.name.startswith(SSO_PREFIX)


def with_userinfo(claims: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims, with the email and its verification both from userinfo
    (the ID token had no email: its ``email_verified`` alone means nothing)."""
    merged = {k: v for k, v in claims.items() if k not in EMAIL_CLAIMS}
    merged.update({k: info[k] for k in EMAIL_CLAIMS if k in info})
    if "name" in info and "name" not in merged:
        merged["name"] = info["name"]
    return merged


@dataclass
class ProviderClient:
    callback_url: str
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))
    org_destinations: DestinationPolicy = field(
        default_factory=lambda: DestinationPolicy(allowed_hosts=frozenset(), allow_loopback=False)
    )
    """Where an org's own provider may be fetched: its URLs are written by org owners."""
    _metadata: dict[tuple[str, bool], ProviderMetadata] = field(default_factory=dict)

    def metadata(self, provider: ProviderConfig) -> ProviderMetadata:
        """Discovery and keys of the provider's issuer; an org's provider has every URL
        it names checked before it is fetched."""
        guarded = is_org_provider(provider)
        key = (provider.issuer, guarded)
        if key not in self._metadata:
            check = self.checked_destination if guarded else None
            self._metadata[key] = ProviderMetadata(provider.issuer, self.http, check)
        return self._metadata[key]

    async def checked_destination(self, url: str) -> None:
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

    async def check_org_issuer(self, issuer: str) -> None:
        """When an org's provider is saved: a discovery document that answers must name
        only URLs this gateway would use (else 400 ``sso_provider_refused``). A provider
        that does not answer yet is accepted: every later fetch checks its document again,
        which its owner may change at any time."""
        metadata = ProviderMetadata(issuer, self.http, self.checked_destination)
        try:
            await metadata.load()
        except Unavailable:
            return
        except BadGateway as exc:
            raise Invalid(
                f"The org's sign-in provider cannot be used: {exc.message}",
                code="sso_provider_refused",
                hint="Its discovery document must name http(s) URLs at public addresses.",
            ) from None

    async def _post(
        self, provider: ProviderConfig, url: str, data: dict[str, str]
    ) -> httpx.Response:
        if is_org_provider(provider):
            await self.checked_destination(url)
        try:
            return await self.http.post(
                url, data=data, auth=(provider.client_id, provider.client_secret)
            )
        except httpx.HTTPError:
            raise unavailable("the OpenID provider did not answer") from None

    async def exchange(
        self, provider: ProviderConfig, code: str, stored: dict[str, Any]
    ) -> dict[str, Any]:
        """The code for tokens (with the PKCE verifier), then the ID token's claims (the
        provider's refresh token goes into ``stored``)."""
        metadata = self.metadata(provider)
        document = await metadata.load()
        response = await self._post(
            provider,
            document["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.callback_url,
                "code_verifier": stored["verifier"],
            },
        )
        if response.status_code != 200:
            raise refused("the provider refused the authorization code", code="oidc_code_rejected")
        answer = json_object(response, "token answer")
        refresh_token = answer.get("refresh_token")
        stored["provider_refresh_token"] = refresh_token if isinstance(refresh_token, str) else None
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise refused("the provider sent no ID token")
        claims = await metadata.verify_id_token(id_token, provider.client_id, stored["nonce"])
        access_token = answer.get("access_token")
        if "email" not in claims and isinstance(access_token, str):
            info = await self._userinfo(provider, document, access_token, claims)
            claims = with_userinfo(claims, info)
            check_claims(claims)  # the email userinfo gave
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
        if is_org_provider(provider):
            await self.checked_destination(endpoint)
        try:
            response = await self.http.get(
                endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError:
            raise unavailable("the OpenID provider did not answer") from None
        if response.status_code != 200:
            return {}
        info = json_object(response, "userinfo answer")
        if info.get("sub") != claims["sub"]:
            raise refused("the userinfo answer is about another subject")
        return info

    async def refresh(self, provider: ProviderConfig, refresh_token: str) -> str:
        """The provider must still know the user: its new refresh token (or the same);
        raises ``sso_session_ended`` when it refuses."""
        document = await self.metadata(provider).load()
        response = await self._post(
            provider,
            document["token_endpoint"],
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        if response.status_code >= 500:
            raise unavailable(f"the OpenID provider answered {response.status_code}")
        if response.status_code != 200:
            raise Unauthorized(
                "the org's provider no longer signs this user in", code="sso_session_ended"
            )
        new_token = json_object(response, "token answer").get("refresh_token")
        return new_token if isinstance(new_token, str) else refresh_token

    async def close(self) -> None:
        await self.http.aclose()
