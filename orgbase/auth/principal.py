"""Who is calling: a credential turned into a Principal.

A credential is an access token (a user, through a live session) or an API key
(``obk_...``). Every failure is a 401 with a precise code; nothing here returns a 500 for a
bad credential. Where the credential comes from (headers, a socket's query) is the
request-auth component's business (``orgbase.platform.request_auth``).
"""

from __future__ import annotations

from orgbase.auth.apikeys import ApiKeyStore, digest, looks_like_api_key
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import AccessClaims, TokenService, token_error
from orgbase.core.context import Principal, Role


class Authenticator:
    def __init__(self, tokens: TokenService, sessions: SessionStore, api_keys: ApiKeyStore) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.api_keys = api_keys

    def claims(self, token: str) -> AccessClaims:
        """A verified access token's claims (signature, expiry, audience...; not the session)."""
        return self.tokens.verify(token)

    async def authenticate(self, credential: str) -> Principal:
        if looks_like_api_key(credential):
            return await self.api_key(credential)
        claims = self.tokens.verify(credential)
        if not await self.sessions.is_alive(claims.sid, claims.sub):
            raise token_error("session_revoked", "the session has ended; sign in again")
        return principal_of(claims)

    async def api_key(self, key: str) -> Principal:
        found = await self.api_keys.authenticate(key)
        if found is None:
            raise token_error("api_key_invalid", "the API key is unknown, revoked or expired")
        role: Role = found.role  # type: ignore[assignment]
        return Principal(
            kind="api_key",
            key_id=found.key_id,
            org_id=found.org_id,
            key_role=role,
            key_digest=digest(key),
        )


def principal_of(claims: AccessClaims) -> Principal:
    """The principal an access token names (its session checked by the caller)."""
    return Principal(
        kind="user",
        user_id=claims.sub,
        session_id=claims.sid,
        org_id=claims.org,
        impersonation_id=claims.imp,
        expires_at=claims.exp if claims.imp is not None else None,
        aal=claims.aal,
        session_secret=claims.ssec,
    )
