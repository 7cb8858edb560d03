"""Who is calling: a request's credentials turned into a Principal.

``Authorization: Bearer <access token>`` (a user, through a live session) or an API key,
as ``Authorization: Bearer obk_...`` or ``apikey: obk_...``. Every failure is a 401 with a
precise code; nothing here returns a 500 for a bad credential.
"""

from __future__ import annotations

from orgbase.auth.apikeys import ApiKeyStore, looks_like_api_key
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import MAX_TOKEN_LENGTH, TokenService, token_error
from orgbase.core.context import Principal, Role
from orgbase.core.errors import Unauthorized


class Authenticator:
    def __init__(self, tokens: TokenService, sessions: SessionStore, api_keys: ApiKeyStore) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.api_keys = api_keys

    async def authenticate(self, authorization: str | None, apikey: str | None) -> Principal:
        credential = self.credential(authorization, apikey)
        if looks_like_api_key(credential):
            return await self._api_key(credential)
        claims = self.tokens.verify(credential)
        if not await self.sessions.is_alive(claims.sid, claims.sub):
            raise token_error("session_revoked", "the session has ended; sign in again")
        return Principal(
            kind="user",
            user_id=claims.sub,
            session_id=claims.sid,
            org_id=claims.org,
            impersonation_id=claims.imp,
        )

    @staticmethod
    def credential(authorization: str | None, apikey: str | None) -> str:
        """The bearer token or API key of a request (401 when absent or garbled)."""
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise token_error("token_malformed", "use 'Authorization: Bearer <token>'")
            credential = value.strip()
        elif apikey:
            credential = apikey.strip()
        else:
            raise Unauthorized(
                "authentication required",
                code="auth_required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if len(credential) > MAX_TOKEN_LENGTH or not credential.isascii():
            raise token_error("token_malformed", "the credential is malformed")
        return credential

    async def _api_key(self, key: str) -> Principal:
        found = await self.api_keys.authenticate(key)
        if found is None:
            raise token_error("api_key_invalid", "the API key is unknown, revoked or expired")
        role: Role = found.role  # type: ignore[assignment]
        return Principal(kind="api_key", key_id=found.key_id, org_id=found.org_id, key_role=role)
