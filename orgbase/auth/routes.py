"""HTTP routes of the auth area (/v1/auth, API keys, JWKS)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from litestar.types import ControllerRouterHandler

from orgbase.auth.browser import BrowserSessionController
from orgbase.auth.gotrue_routes import GoTrueController, client_config
from orgbase.auth.oidc_routes import OidcController
from orgbase.auth.route_types import (
    Accounts,
    Caller,
    Ctx,
    Grants,
    KeyAdmin,
    Meta,
    MySessions,
    SignUps,
)
from orgbase.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    Logout,
    Session,
    SignUp,
    TokenRequest,
    TokenResponse,
    User,
    UserDelete,
    UserUpdate,
)
from orgbase.auth.tokens import TokenService
from orgbase.core.context import Principal


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar's declaration style

    @post("/signup", summary="Create an account (mails a confirmation)")
    async def signup(self, data: JSONBody[SignUp], signups: SignUps, meta: Meta) -> User:
        """The same answer whether the address has an account or not (its owner is
        mailed instead): a sign-up tells nobody who is registered."""
        return (await signups.sign_up(data, meta)).user

    @post("/token", status_code=HTTP_200_OK, summary="Sign in, or refresh (rotates the token)")
    async def token(
        self, data: JSONBody[TokenRequest], grants: Grants, meta: Meta
    ) -> TokenResponse:
        return await grants.token(data, meta)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        summary="End this session, all sessions (global) or all others",
    )
    async def logout(
        self,
        user_sessions: MySessions,
        principal: Caller,
        meta: Meta,
        data: JSONBody[Logout | None] = None,
    ) -> None:
        await user_sessions.logout(principal, data or Logout(), meta)

    @get(
        "/session",
        summary="Who this credential is (checks the session, touches no table)",
    )
    async def whoami(self, principal: Caller) -> Principal:
        return principal

    @get("/user", summary="The signed-in user")
    async def get_user(self, accounts: Accounts, principal: Caller) -> User:
        return await accounts.get_user(principal)

    @patch("/user", summary="Change my name, email or password")
    async def update_user(
        self, data: JSONBody[UserUpdate], accounts: Accounts, principal: Caller, meta: Meta
    ) -> User:
        """The email and the password need the current password; a password change ends
        the other sessions."""
        return await accounts.update_user(principal, data, meta)

    @delete("/user", status_code=HTTP_204_NO_CONTENT, summary="Delete my account")
    async def delete_user(
        self, data: JSONBody[UserDelete], accounts: Accounts, principal: Caller, meta: Meta
    ) -> None:
        """Needs the password; ends every session. An org's last owner must hand it over
        (or delete it) first."""
        await accounts.delete_user(principal, data.password, meta)

    @get("/sessions", summary="My live sessions")
    async def list_sessions(self, user_sessions: MySessions, principal: Caller) -> list[Session]:
        return await user_sessions.list_sessions(principal)

    @delete("/sessions/{session_id:uuid}", summary="Revoke one of my sessions")
    async def revoke_session(
        self, session_id: FromPath[UUID], user_sessions: MySessions, principal: Caller, meta: Meta
    ) -> None:
        await user_sessions.revoke_session(principal, session_id, meta)


class ApiKeyController(Controller):
    path = "/v1/orgs/{org_id:uuid}/api-keys"
    tags = ["api keys"]  # noqa: RUF012

    @post("/", summary="Create an API key (admins); the key is shown once")
    async def create(
        self,
        data: JSONBody[ApiKeyCreate],
        key_admin: KeyAdmin,
        principal: Caller,
        ctx: Ctx,
        meta: Meta,
    ) -> ApiKeyCreated:
        return await key_admin.create_api_key(principal, ctx, data, meta)

    @get("/", summary="List the org's API keys (admins)")
    async def list_keys(self, key_admin: KeyAdmin, principal: Caller, ctx: Ctx) -> list[ApiKey]:
        return await key_admin.list_api_keys(principal, ctx)

    @delete("/{key_id:uuid}", summary="Revoke an API key (admins); effective at once")
    async def revoke(
        self, key_id: FromPath[UUID], key_admin: KeyAdmin, principal: Caller, ctx: Ctx, meta: Meta
    ) -> None:
        await key_admin.revoke_api_key(principal, ctx, key_id, meta)


@get(
    ["/.well-known/jwks.json", "/auth/v1/.well-known/jwks.json"],
    tags=["auth"],
    summary="Public keys that verify access tokens (GoTrue's path too: supabase-js getClaims())",
)
async def jwks(tokens: NamedDependency[TokenService]) -> dict[str, Any]:
    return tokens.keys.public_jwks()


auth_handlers: list[ControllerRouterHandler] = [
    AuthController,
    BrowserSessionController,
    ApiKeyController,
    GoTrueController,
    OidcController,
    client_config,
    jwks,
]
