"""GoTrue's HTTP API under /auth/v1, so Supabase's auth clients work unchanged.

The bodies are decoded here by their type (the token endpoint's body depends on its
``grant_type`` query parameter); the flows live in ``gotrue.GoTrue`` and
``mfa.Factors``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT, HTTP_303_SEE_OTHER

from orgbase import __version__
from orgbase.auth.gotrue import GoTrue
from orgbase.auth.gotrue_schemas import (
    EmailOnly,
    FactorEnroll,
    FactorVerify,
    GoTrueOtp,
    GoTruePassword,
    GoTrueRefresh,
    GoTrueResend,
    GoTrueSignUp,
    GoTrueUserUpdate,
    GoTrueVerify,
)
from orgbase.auth.route_types import AnyRequest, Auth, Caller, Meta, Mfa, Oidc, RedirectTo
from orgbase.core.context import RequestMeta
from orgbase.core.errors import Forbidden, Invalid
from orgbase.core.settings import AuthSettings

T = TypeVar("T")


async def body_of(request: AnyRequest, kind: type[T]) -> T:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc), code="validation_failed") from None
    except msgspec.DecodeError:
        raise Invalid("the body is not JSON", code="bad_json") from None


def refuse_anonymous(raw: bytes) -> None:
    """``signInAnonymously()`` is a sign-up with neither email nor phone: not served (an
    account without an address belongs to no org and proves nothing), answered with the
    code GoTrue gives where it is turned off."""
    try:
        body = msgspec.json.decode(raw or b"{}")
    except msgspec.DecodeError:
        return  # the body's own error comes next
    if isinstance(body, dict) and not body.get("email") and not body.get("phone"):
        raise Forbidden("anonymous sign-ins are not served", code="anonymous_provider_disabled")


def mailing(
    path: str,
    summary: str,
    kind: type[T],
    flow: Callable[[GoTrue, T, RequestMeta, str | None], Awaitable[None]],
) -> HTTPRouteHandler:
    """A POST (named for its path) that mails a code and a link: a ``kind`` body goes to
    ``flow`` with the link's ``redirect_to``. The answer is GoTrue's ``{}``, the same whether
    the address has an account or not."""

    async def handler(
        _: object,  # the controller
        request: AnyRequest,
        gotrue: Auth,
        meta: Meta,
        redirect_to: RedirectTo = None,
    ) -> dict[str, Any]:
        await flow(gotrue, await body_of(request, kind), meta, redirect_to)
        return {}

    handler.__name__ = handler.__qualname__ = path.strip("/")
    return post(path, status_code=HTTP_200_OK, summary=summary)(handler)


class GoTrueController(Controller):
    path = "/auth/v1"
    tags = ["auth (GoTrue)"]  # noqa: RUF012 - Litestar's declaration style

    @get("/settings", summary="What this server offers (GoTrue's /settings)")
    async def settings(self, gotrue: Auth, oidc: Oidc) -> dict[str, Any]:
        s: AuthSettings = gotrue.settings
        return {
            "external": {
                "email": True,
                "phone": False,
                "anonymous_users": False,
                **dict.fromkeys(oidc.providers, True),
            },
            "disable_signup": False,
            "mailer_autoconfirm": s.allow_unconfirmed_sign_in,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
            "mfa": {"totp": True},
        }

    @get("/health", summary="GoTrue's health: the auth API answers", cache=False)
    async def health(self) -> dict[str, str]:
        return {
            "name": "GoTrue",
            "version": __version__,
            "description": "orgbase's GoTrue-compatible auth API",
        }

    @post("/signup", status_code=HTTP_200_OK, summary="Sign up (mails a confirmation)")
    async def signup(
        self,
        request: AnyRequest,
        gotrue: Auth,
        meta: Meta,
        redirect_to: RedirectTo = None,
    ) -> dict[str, Any]:
        refuse_anonymous(await request.body())
        body = await body_of(request, GoTrueSignUp)
        return await gotrue.signup(body, meta, redirect_to)

    @post("/token", status_code=HTTP_200_OK, summary="grant_type=password or refresh_token")
    async def token(
        self,
        request: AnyRequest,
        gotrue: Auth,
        meta: Meta,
        grant_type: Annotated[str, QueryParameter(max_length=40)],
    ) -> dict[str, Any]:
        if grant_type == "password":
            password = await body_of(request, GoTruePassword)
            return await gotrue.password_grant(password.email, password.password, meta)
        if grant_type == "refresh_token":
            refresh = await body_of(request, GoTrueRefresh)
            return await gotrue.refresh_grant(refresh.refresh_token, meta)
        raise Invalid(
            "grant_type must be password or refresh_token",
            code="unsupported_grant_type",
        )

    @get("/user", summary="The signed-in user")
    async def get_user(self, gotrue: Auth, principal: Caller) -> dict[str, Any]:
        user_id, _ = principal.require_user()
        return await gotrue.user(user_id)

    @put("/user", summary="Change metadata, password or email (the new one is confirmed)")
    async def update_user(
        self,
        request: AnyRequest,
        gotrue: Auth,
        principal: Caller,
        meta: Meta,
        redirect_to: RedirectTo = None,
    ) -> dict[str, Any]:
        body = await body_of(request, GoTrueUserUpdate)
        return await gotrue.update_user(principal, body, meta, redirect_to)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="scope=local, global or others")
    async def logout(
        self,
        gotrue: Auth,
        principal: Caller,
        meta: Meta,
        logout_scope: Annotated[str, QueryParameter(name="scope", max_length=20)] = "global",
    ) -> None:
        await gotrue.logout(principal, logout_scope, meta)

    recover = mailing(
        "/recover",
        "Mail a recovery code and link",
        EmailOnly,
        lambda gotrue, body, meta, back: gotrue.recover(body.email, meta, back),
    )
    otp = mailing("/otp", "Mail a sign-in code and magic link", GoTrueOtp, GoTrue.otp)
    resend = mailing("/resend", "Mail the confirmation again", GoTrueResend, GoTrue.resend)

    @post("/verify", status_code=HTTP_200_OK, summary="Use a mailed code: a session")
    async def verify(self, request: AnyRequest, gotrue: Auth, meta: Meta) -> dict[str, Any]:
        return await gotrue.verify(await body_of(request, GoTrueVerify), meta)

    @get("/verify", status_code=HTTP_303_SEE_OTHER, summary="A mailed link: back to the app")
    async def verify_link(
        self,
        gotrue: Auth,
        meta: Meta,
        token: Annotated[str, QueryParameter(max_length=200)],
        type_: Annotated[str, QueryParameter(name="type", max_length=20)] = "",
        redirect_to: RedirectTo = None,
    ) -> Redirect:
        target = await gotrue.verify_link(token, type_, redirect_to, meta)
        return Redirect(target, status_code=HTTP_303_SEE_OTHER)

    # -- MFA ------------------------------------------------------------------------------

    @post("/factors", status_code=HTTP_200_OK, summary="Enroll a TOTP factor")
    async def enroll(
        self, request: AnyRequest, mfa: Mfa, principal: Caller, meta: Meta
    ) -> dict[str, Any]:
        return await mfa.enroll(principal, await body_of(request, FactorEnroll), meta)

    @post(
        "/factors/recovery-codes",
        status_code=HTTP_200_OK,
        summary="Replace the recovery codes (an aal2 session; the old codes stop working)",
    )
    async def recovery_codes(self, mfa: Mfa, principal: Caller, meta: Meta) -> dict[str, Any]:
        return await mfa.replace_recovery_codes(principal, meta)

    @post("/factors/{factor_id:str}/challenge", status_code=HTTP_200_OK, summary="Challenge")
    async def challenge(
        self, factor_id: FromPath[str], mfa: Mfa, principal: Caller
    ) -> dict[str, Any]:
        return await mfa.challenge(principal, factor_id)

    @post("/factors/{factor_id:str}/verify", status_code=HTTP_200_OK, summary="Verify: aal2")
    async def verify_factor(
        self, factor_id: FromPath[str], request: AnyRequest, mfa: Mfa, principal: Caller, meta: Meta
    ) -> dict[str, Any]:
        body = await body_of(request, FactorVerify)
        return await mfa.verify(principal, factor_id, body, meta)

    @delete("/factors/{factor_id:str}", status_code=HTTP_200_OK, summary="Unenroll")
    async def unenroll(
        self, factor_id: FromPath[str], mfa: Mfa, principal: Caller, meta: Meta
    ) -> dict[str, Any]:
        return await mfa.unenroll(principal, factor_id, meta)


@get("/v1/auth/client-config", tags=["auth"], summary="What a sign-in page needs (public)")
async def client_config(gotrue: Auth, oidc: Oidc) -> dict[str, Any]:
    """The publishable key (public by design: it grants nothing), the OpenID providers to
    offer as "sign in with ..." buttons, and whether a new account must confirm its email
    before signing in."""
    return {
        "publishable_key": gotrue.settings.publishable_key,
        "providers": [
            {"name": p.name, "label": p.label or p.name} for p in oidc.providers.values()
        ],
        "confirm_email": not gotrue.settings.allow_unconfirmed_sign_in,
    }
