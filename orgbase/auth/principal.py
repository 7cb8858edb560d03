"""Who is calling: a request's credentials turned into a Principal.

``Authorization: Bearer <access token>`` (a user, through a live session) or an API key,
as ``Authorization: Bearer obk_...`` or ``apikey: obk_...``. Every failure is a 401 with a
precise code; nothing here returns a 500 for a bad credential.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from orgbase.auth.apikeys import ApiKeyStore, looks_like_api_key
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import MAX_TOKEN_LENGTH, TokenService, token_error
from orgbase.core.context import Role
from orgbase.core.errors import Forbidden, Unauthorized


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["user", "api_key"]
    user_id: UUID | None = None
    session_id: UUID | None = None
    org_id: UUID | None = None
    """The active org: the token's ``org`` claim, or the API key's org."""
    key_id: UUID | None = None
    key_role: Role | None = None

    def require_user(self) -> tuple[UUID, UUID]:
        """(user_id, session_id) of a signed-in user; API keys are refused."""
        if self.kind != "user" or self.user_id is None or self.session_id is None:
            raise Forbidden("this endpoint needs a user's access token", code="user_token_required")
        return self.user_id, self.session_id


class Authenticator:
    def __init__(self, tokens: TokenService, sessions: SessionStore, api_keys: ApiKeyStore) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.api_keys = api_keys

    async def authenticate(self, authorization: str | None, apikey: str | None) -> Principal:
        credential = self._credential(authorization, apikey)
        if looks_like_api_key(credential):
            return await self._api_key(credential)
        claims = self.tokens.verify(credential)
        if not await self.sessions.is_alive(claims.sid, claims.sub):
            raise token_error("session_revoked", "the session has ended; sign in again")
        return Principal(kind="user", user_id=claims.sub, session_id=claims.sid, org_id=claims.org)

    @staticmethod
    def _credential(authorization: str | None, apikey: str | None) -> str:
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
