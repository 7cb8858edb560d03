"""HTTP routes of the auth area (/v1/auth, API keys, JWKS)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from litestar.types import ControllerRouterHandler

from orgbase.auth.principal import Authenticator, Principal
from orgbase.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    Logout,
    RequestMeta,
    Session,
    SignUp,
    TokenRequest,
    TokenResponse,
    User,
    UserDelete,
    UserUpdate,
)
from orgbase.auth.service import AuthService
from orgbase.auth.tokens import TokenService


def request_meta(request: Request[Any, Any, Any]) -> RequestMeta:
    state = request.scope.get("state", {})
    user_agent = request.headers.get("user-agent")
    return RequestMeta(
        ip=state.get("client_ip"),
        user_agent=user_agent[:400] if user_agent else None,
        request_id=state.get("request_id", ""),
    )


async def authenticate(request: Request[Any, Any, Any]) -> Principal:
    """The guard of every authenticated route: credentials -> Principal (or a 401)."""
    authenticator: Authenticator = request.app.state.auth.authenticator
    headers = request.headers
    principal = await authenticator.authenticate(
        headers.get("authorization"), headers.get("apikey")
    )
    state = request.scope["state"]
    state["user_id"] = principal.user_id or principal.key_id
    state["org_id"] = principal.org_id
    return principal


MetaDependency = Provide(request_meta, sync_to_thread=False)
PrincipalDependency = Provide(authenticate)


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar's declaration style
    dependencies = {"meta": MetaDependency}  # noqa: RUF012

    @post("/signup", summary="Create an account")
    async def signup(
        self,
        data: JSONBody[SignUp],
        auth: NamedDependency[AuthService],
        meta: NamedDependency[RequestMeta],
    ) -> User:
        return await auth.sign_up(data, meta)

    @post("/token", status_code=HTTP_200_OK, summary="Sign in, or refresh (rotates the token)")
    async def token(
        self,
        data: JSONBody[TokenRequest],
        auth: NamedDependency[AuthService],
        meta: NamedDependency[RequestMeta],
    ) -> TokenResponse:
        return await auth.token(data, meta)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        dependencies={"principal": PrincipalDependency},
        summary="End this session, all sessions (global) or all others",
    )
    async def logout(
        self,
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
        data: JSONBody[Logout | None] = None,
    ) -> None:
        await auth.logout(principal, data or Logout(), meta)

    @get(
        "/session",
        dependencies={"principal": PrincipalDependency},
        summary="Who this credential is (checks the session, touches no table)",
    )
    async def whoami(self, principal: NamedDependency[Principal]) -> Principal:
        return principal

    @get("/user", dependencies={"principal": PrincipalDependency}, summary="The signed-in user")
    async def get_user(
        self, auth: NamedDependency[AuthService], principal: NamedDependency[Principal]
    ) -> User:
        return await auth.get_user(principal)

    @patch(
        "/user",
        dependencies={"principal": PrincipalDependency},
        summary="Change name, email or password (a password change ends the other sessions)",
    )
    async def update_user(
        self,
        data: JSONBody[UserUpdate],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
    ) -> User:
        return await auth.update_user(principal, data, meta)

    @delete(
        "/user",
        status_code=HTTP_204_NO_CONTENT,
        dependencies={"principal": PrincipalDependency},
        summary="Delete my account (needs the password); ends every session",
    )
    async def delete_user(
        self,
        data: JSONBody[UserDelete],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
    ) -> None:
        await auth.delete_user(principal, data.password, meta)

    @get("/sessions", dependencies={"principal": PrincipalDependency}, summary="My live sessions")
    async def list_sessions(
        self, auth: NamedDependency[AuthService], principal: NamedDependency[Principal]
    ) -> list[Session]:
        return await auth.list_sessions(principal)

    @delete(
        "/sessions/{session_id:uuid}",
        dependencies={"principal": PrincipalDependency},
        summary="Revoke one of my sessions",
    )
    async def revoke_session(
        self,
        session_id: FromPath[UUID],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
    ) -> None:
        await auth.revoke_session(principal, session_id, meta)


class ApiKeyController(Controller):
    path = "/v1/orgs/{org_id:uuid}/api-keys"
    tags = ["api keys"]  # noqa: RUF012
    dependencies = {  # noqa: RUF012
        "meta": MetaDependency,
        "principal": PrincipalDependency,
    }

    @post("/", summary="Create an API key (admins); the key is shown once")
    async def create(
        self,
        org_id: FromPath[UUID],
        data: JSONBody[ApiKeyCreate],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
    ) -> ApiKeyCreated:
        return await auth.create_api_key(principal, org_id, data, meta)

    @get("/", summary="List the org's API keys (admins)")
    async def list_keys(
        self,
        org_id: FromPath[UUID],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
    ) -> list[ApiKey]:
        return await auth.list_api_keys(principal, org_id)

    @delete("/{key_id:uuid}", summary="Revoke an API key (admins); effective at once")
    async def revoke(
        self,
        org_id: FromPath[UUID],
        key_id: FromPath[UUID],
        auth: NamedDependency[AuthService],
        principal: NamedDependency[Principal],
        meta: NamedDependency[RequestMeta],
    ) -> None:
        await auth.revoke_api_key(principal, org_id, key_id, meta)


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that verify access tokens")
async def jwks(tokens: NamedDependency[TokenService]) -> dict[str, Any]:
    return tokens.keys.public_jwks()


auth_handlers: list[ControllerRouterHandler] = [AuthController, ApiKeyController, jwks]
