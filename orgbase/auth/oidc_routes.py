"""GoTrue's provider routes under /auth/v1: sign in with a provider (``/authorize``,
``/sso``, ``/callback``) and the signed-in user's linked identities
(``/user/identities``: list, link, unlink), as supabase-js calls them.

``/authorize`` is the only place a flow starts in the browser: it sets the cookie the
callback checks (the state is bound to that browser). ``/sso`` and
``/user/identities/authorize`` are API calls answering ``{url}``: a URL of ``/authorize``.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT, HTTP_303_SEE_OTHER

from orgbase.auth.gotrue import GoTrue, error_redirect, session_redirect
from orgbase.auth.gotrue_routes import body_of
from orgbase.auth.gotrue_schemas import SsoStart
from orgbase.auth.oidc_state import COOKIE_PATH, STATE_SECONDS, cookie_name
from orgbase.auth.route_types import AnyRequest, Auth, Caller, Meta, Oidc, RedirectTo
from orgbase.core.errors import Forbidden, Invalid

State = Annotated[str, QueryParameter(name="state", max_length=200)]
ProviderName = Annotated[str, QueryParameter(max_length=200)]
ReturnUrl = NamedDependency[str]


def return_url(gotrue: GoTrue, redirect_to: str | None) -> str:
    """Where a flow sends the browser back: ``redirect_to`` when it is allowed, else the
    app's public URL."""
    return gotrue.check_redirect(redirect_to) or gotrue.public_url


def provide_return_url(gotrue: Auth, redirect_to: RedirectTo = None) -> str:
    return return_url(gotrue, redirect_to)


def _state_cookie(request: AnyRequest, state: str, value: str, max_age: int) -> Cookie:
    """HttpOnly, only sent to the callback; SameSite=Lax: the provider's redirect back
    is a top-level navigation from another site, which Lax cookies go with."""
    return Cookie(
        key=cookie_name(state),
        value=value,
        path=COOKIE_PATH,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
        max_age=max_age,
    )


class OidcController(Controller):
    path = "/auth/v1"
    tags = ["auth (GoTrue)"]  # noqa: RUF012 - Litestar's declaration style
    dependencies = {"back": Provide(provide_return_url, sync_to_thread=False)}  # noqa: RUF012

    @get("/authorize", status_code=HTTP_303_SEE_OTHER, summary="Sign in with a provider")
    async def authorize(
        self,
        *,
        request: AnyRequest,
        oidc: Oidc,
        provider: ProviderName,
        back: ReturnUrl,
        link_ticket: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Redirect:
        """Redirects to the provider (authorization code + PKCE, state, nonce), with the
        cookie that binds the state to this browser."""
        target, started = await oidc.authorize(await oidc.provider(provider), back, link_ticket)
        cookie = _state_cookie(request, started.state, started.binding, STATE_SECONDS)
        return Redirect(target, status_code=HTTP_303_SEE_OTHER, cookies=[cookie])

    @post("/sso", status_code=HTTP_200_OK, summary="Sign in with your org's SSO (by domain)")
    async def sso(self, request: AnyRequest, gotrue: Auth, oidc: Oidc) -> dict[str, Any]:
        """GoTrue's /sso: ``{domain}`` (or ``provider_id``: ``sso:<org id>``) -> ``{url}``
        to open in the browser (our /authorize for the org's provider)."""
        body = await body_of(request, SsoStart)
        back = return_url(gotrue, body.redirect_to)
        if body.domain:
            provider = await oidc.provider_for_domain(body.domain)
        elif body.provider_id:
            provider = await oidc.provider(body.provider_id)
        else:
            raise Invalid("send domain or provider_id", code="validation_failed")
        await oidc.client.metadata(provider).load()  # a provider we cannot use: refused now
        return {"url": oidc.start_url(provider.name, back)}

    @get("/callback", status_code=HTTP_303_SEE_OTHER, summary="The provider's answer")
    async def callback(
        self,
        *,
        request: AnyRequest,
        oidc: Oidc,
        meta: Meta,
        oidc_state: State,
        code: Annotated[str | None, QueryParameter(max_length=2000)] = None,
        error: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Redirect:
        """Back to the app with a session, or with the provider's error. A state that is
        unknown, used or expired is a 400, one from another browser a 403 (no redirect:
        nothing says where to)."""
        stored = await oidc.states.take(oidc_state, request.cookies.get(cookie_name(oidc_state)))
        cleared = [_state_cookie(request, oidc_state, "", 0)]
        if error is not None or code is None:
            denied = Forbidden(error or "no code", code="oidc_denied")
            target = error_redirect(stored["redirect_to"], denied)
            return Redirect(target, status_code=HTTP_303_SEE_OTHER, cookies=cleared)
        signed_in = await oidc.callback(code, stored, meta)
        target = session_redirect(signed_in.redirect_to, signed_in.tokens, "oauth")
        return Redirect(target, status_code=HTTP_303_SEE_OTHER, cookies=cleared)

    # -- the signed-in user's identities -----------------------------------------------

    @get("/user/identities", summary="The providers linked to the signed-in account")
    async def identities(self, oidc: Oidc, principal: Caller) -> list[dict[str, Any]]:
        return await oidc.links.listing(principal)

    @get("/user/identities/authorize", summary="Link a provider to the signed-in account")
    async def link(
        self, oidc: Oidc, principal: Caller, provider: ProviderName, back: ReturnUrl
    ) -> dict[str, Any]:
        """``{url}`` to open in this user's browser: signing in there with the provider
        links that identity to this account (its verified address must be the account's)."""
        return {"url": await oidc.start_link(principal, provider, back)}

    @delete(
        "/user/identities/{identity_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Unlink a provider (never the account's last way to sign in)",
    )
    async def unlink(
        self, identity_id: FromPath[UUID], oidc: Oidc, principal: Caller, meta: Meta
    ) -> None:
        await oidc.links.unlink(principal, identity_id, meta)
