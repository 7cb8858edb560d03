"""Sign-in for browser apps (the studio): the refresh token lives in a cookie JS cannot read.

The access token is returned in the body and kept in the page's memory only; the refresh
token goes into an httpOnly, SameSite=Strict cookie scoped to these routes, so neither
localStorage nor script ever holds it. Because the cookie authenticates refresh and
sign-out, those two also need the double-submit CSRF token: a readable cookie whose value
the page repeats in ``X-CSRF-Token`` (another site can neither read the cookie nor, with
SameSite=Strict, make the browser send it).

Everything else the studio does goes through the public API with the bearer token.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from msgspec import Meta

from orgbase.auth.browser_guard import same_site_json
from orgbase.auth.grants import TokenGrants
from orgbase.auth.schemas import (
    Email,
    Logout,
    Password,
    PasswordGrant,
    RefreshGrant,
    TokenResponse,
    User,
)
from orgbase.auth.user_sessions import UserSessions
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Forbidden, Unauthorized
from orgbase.core.secret_compare import same_secret

PATH = "/v1/auth/browser"
REFRESH_COOKIE = "orgbase_refresh"
CSRF_COOKIE = "orgbase_csrf"
CSRF_HEADER = "x-csrf-token"


class BrowserSignIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    org_id: UUID | None = None


class BrowserRefresh(msgspec.Struct, forbid_unknown_fields=True):
    org_id: UUID | None = None
    """Switch the session's token to this org (the user must be a member)."""


class BrowserSession(msgspec.Struct):
    access_token: Annotated[str, Meta(description="Keep in memory only")]
    expires_in: int
    user: User
    org_id: UUID | None
    csrf_token: str


def _cookies(request: Request[Any, Any, Any], tokens: TokenResponse) -> list[Cookie]:
    secure = request.url.scheme == "https"
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return [
        Cookie(
            key=REFRESH_COOKIE,
            value=tokens.refresh_token,
            path=PATH,
            httponly=True,
            secure=secure,
            samesite="strict",
            max_age=30 * 24 * 3600,
        ),
        # Readable by the page on purpose: it is repeated in X-CSRF-Token.
        Cookie(key=CSRF_COOKIE, value=csrf, path="/", secure=secure, samesite="strict"),
    ]


def _session(tokens: TokenResponse, cookies: list[Cookie]) -> Response[BrowserSession]:
    csrf = next(str(c.value) for c in cookies if c.key == CSRF_COOKIE)
    body = BrowserSession(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        user=tokens.user,
        org_id=tokens.org_id,
        csrf_token=csrf,
    )
    return Response(body, status_code=HTTP_200_OK, cookies=cookies)


def _require_csrf(request: Request[Any, Any, Any]) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not same_secret(header, cookie):
        raise Forbidden(
            "this call needs the X-CSRF-Token header equal to the orgbase_csrf cookie",
            code="csrf_failed",
        )


def _cleared() -> list[Cookie]:
    return [
        Cookie(key=REFRESH_COOKIE, value="", path=PATH, httponly=True, max_age=0),
        Cookie(key=CSRF_COOKIE, value="", path="/", max_age=0),
    ]


Req = Request[Any, Any, Any]
Grants = NamedDependency[TokenGrants]
MetaDep = NamedDependency[RequestMeta]


class BrowserSessionController(Controller):
    path = PATH
    tags = ["auth"]  # noqa: RUF012 - Litestar's declaration style

    @post(
        "/sign-in",
        summary="Browser sign-in (JSON, from this deployment's pages)",
        guards=[same_site_json],
    )
    async def sign_in(
        self, request: Req, data: JSONBody[BrowserSignIn], grants: Grants, meta: MetaDep
    ) -> Response[BrowserSession]:
        """The access token in the body, the refresh token in an HttpOnly cookie. Only
        ``application/json`` from one of this deployment's origins (a cross-site form must
        not replace the victim's cookies with the attacker's session)."""
        grant = PasswordGrant(email=data.email, password=data.password, org_id=data.org_id)
        tokens = await grants.token(grant, meta)
        return _session(tokens, _cookies(request, tokens))

    @post("/refresh", summary="A new access token from the refresh cookie")
    async def refresh(
        self,
        request: Req,
        grants: Grants,
        meta: MetaDep,
        data: JSONBody[BrowserRefresh | None] = None,
    ) -> Response[BrowserSession]:
        """Needs the X-CSRF-Token header (the double-submit cookie's value)."""
        _require_csrf(request)
        refresh_token = request.cookies.get(REFRESH_COOKIE)
        if not refresh_token:
            raise Unauthorized("not signed in", code="not_signed_in")
        grant = RefreshGrant(refresh_token=refresh_token, org_id=data.org_id if data else None)
        tokens = await grants.token(grant, meta)
        return _session(tokens, _cookies(request, tokens))

    @post(
        "/sign-out",
        status_code=HTTP_204_NO_CONTENT,
        summary="End the session (bearer token and X-CSRF-Token) and clear the cookies",
    )
    async def sign_out(
        self,
        request: Request[Any, Any, Any],
        user_sessions: NamedDependency[UserSessions],
        principal: NamedDependency[Principal],
        meta: MetaDep,
    ) -> Response[None]:
        _require_csrf(request)
        await user_sessions.logout(principal, Logout(), meta)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=_cleared())
