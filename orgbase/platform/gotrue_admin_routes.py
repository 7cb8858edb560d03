"""GoTrue's admin API under /auth/v1 (supabase-js ``auth.admin.*``, supabase-py
``auth.admin``), for two credentials, sent as bearer (and ``apikey``) as Supabase's
clients send the service role key:

- the platform's service key (``ORGBASE_AUTH_SERVICE_KEY``): every account, every
  operation (``auth.gotrue_admin.AdminUsers``);
- an org API key of role admin or owner: only the org's members, to list and read them,
  remove them from the org (``deleteUser``: the account stays) and invite by mail (an org
  invitation); making, changing accounts and sign-in links need the platform's key
  (403 ``service_key_required``).

Anything else is refused: a user's token, even an owner's, or a key below admin (403
``not_admin``); no credential or a wrong one (401). Here in the platform layer because an
org key's answers join the auth area's accounts with the tenancy area's members.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK
from litestar.types import ControllerRouterHandler

from orgbase.auth.gotrue_admin import (
    MAX_PER_PAGE,
    AdminLink,
    AdminUserCreate,
    AdminUsers,
    AdminUserUpdate,
    user_not_found,
)
from orgbase.auth.gotrue_routes import body_of
from orgbase.auth.gotrue_users import signed_up_json
from orgbase.auth.signup import stand_in
from orgbase.core.context import ROLE_RANK, OrgContext, RequestMeta
from orgbase.core.errors import Forbidden, Invalid
from orgbase.core.settings import Settings
from orgbase.platform.request_auth import RequestAuth
from orgbase.tenants.area import TenancyArea

AnyRequest = Request[Any, Any, Any]
# Numbers as text: supabase-js sends them empty when not given.
PageNumber = Annotated[str | None, QueryParameter(name="page", max_length=10)]
PerPage = Annotated[str | None, QueryParameter(name="per_page", max_length=10)]


class InviteBody(msgspec.Struct, kw_only=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    data: dict[str, Any] | None = None


def _presented(request: AnyRequest) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("apikey")


async def admin_scope(
    request: AnyRequest, identities: RequestAuth, settings: Settings
) -> OrgContext | None:
    """None: the platform's service key; else the context of an org admin's API key."""
    presented, key = _presented(request), settings.auth.service_key
    if (
        presented is not None
        and key is not None
        and hmac.compare_digest(presented.encode(), key.encode())
    ):
        request.scope.setdefault("state", {})["auth"] = "service_key"
        return None
    principal = await identities.principal(request)
    if principal.kind != "api_key":
        raise Forbidden(
            "the admin API takes the platform's service key or an org admin's API key",
            code="not_admin",
        )
    ctx = await identities.org_context(request, principal, None)
    if ROLE_RANK[ctx.role] < ROLE_RANK["admin"]:
        raise Forbidden("an API key of role admin or owner manages users", code="not_admin")
    return ctx


def _number(raw: str | None, default: int, most: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise Invalid(f"page and per_page are 1 to {most}", code="validation_failed")
    return int(raw)


def _user_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise user_not_found() from None


@dataclass(frozen=True)
class AdminCall:
    """Who calls (``ctx`` None: the platform's service key) and what answers."""

    ctx: OrgContext | None
    users: AdminUsers
    tenancy: TenancyArea
    meta: RequestMeta

    def platform_only(self, what: str) -> None:
        if self.ctx is not None:
            raise Forbidden(
                f"{what} needs the platform's service key: an org's key invites instead",
                code="service_key_required",
            )

    async def members(self) -> list[UUID] | None:
        """The ids the caller may reach: None for all (the service key)."""
        if self.ctx is None:
            return None
        return [m.user_id for m in await self.tenancy.members.members(self.ctx)]

    async def reachable(self, raw: str) -> UUID:
        user_id = _user_id(raw)
        members = await self.members()
        if members is not None and user_id not in members:
            raise user_not_found()
        return user_id


async def provide_call(
    *,
    request: AnyRequest,
    identities: NamedDependency[RequestAuth],
    gateway_settings: NamedDependency[Settings],
    admin_users: NamedDependency[AdminUsers],
    tenancy: NamedDependency[TenancyArea],
    meta: NamedDependency[RequestMeta],
) -> AdminCall:
    ctx = await admin_scope(request, identities, gateway_settings)
    return AdminCall(ctx, admin_users, tenancy, meta)


Call = NamedDependency[AdminCall]


class GoTrueAdminController(Controller):
    path = "/auth/v1"
    tags = ["auth (GoTrue admin)"]  # noqa: RUF012 - Litestar's declaration style
    dependencies = {"call": Provide(provide_call)}  # noqa: RUF012

    @get("/admin/users", summary="Users, newest first (x-total-count, link)")
    async def list_users(
        self, call: Call, page_: PageNumber = None, per_page_: PerPage = None
    ) -> Response[dict[str, Any]]:
        page, per_page = _number(page_, 1, 1_000_000), _number(per_page_, 50, MAX_PER_PAGE)
        users, total = await call.users.page(page, per_page, await call.members())
        last = max(1, -(-total // per_page))
        links = [f'</admin/users?page={last}&per_page={per_page}>; rel="last"']
        if page < last:
            links.insert(0, f'</admin/users?page={page + 1}&per_page={per_page}>; rel="next"')
        headers = {"x-total-count": str(total), "link": ", ".join(links)}
        return Response({"users": users, "aud": "authenticated"}, headers=headers)

    @get("/admin/users/{user_id:str}", summary="One user")
    async def get_user(self, user_id: FromPath[str], call: Call) -> dict[str, Any]:
        return await call.users.get(await call.reachable(user_id))

    @post("/admin/users", status_code=HTTP_200_OK, summary="Make an account (service key)")
    async def create_user(self, request: AnyRequest, call: Call) -> dict[str, Any]:
        call.platform_only("making users")
        return await call.users.create(await body_of(request, AdminUserCreate), call.meta)

    @put("/admin/users/{user_id:str}", summary="Change an account (service key)")
    async def update_user(
        self, user_id: FromPath[str], request: AnyRequest, call: Call
    ) -> dict[str, Any]:
        call.platform_only("changing users")
        body = await body_of(request, AdminUserUpdate)
        return await call.users.update(_user_id(user_id), body, call.meta)

    @delete(
        "/admin/users/{user_id:str}",
        status_code=HTTP_200_OK,
        summary="Delete an account (service key), or remove a member (an org's key)",
    )
    async def delete_user(self, user_id: FromPath[str], call: Call) -> dict[str, Any]:
        wanted = await call.reachable(user_id)
        if call.ctx is None:
            return await call.users.delete(wanted, call.meta)
        user = await call.users.get(wanted)
        await call.tenancy.members.remove_member(call.ctx, wanted, call.meta)
        return user

    @post("/admin/generate_link", status_code=HTTP_200_OK, summary="A link, not mailed")
    async def generate_link(self, request: AnyRequest, call: Call) -> dict[str, Any]:
        call.platform_only("making sign-in links")
        return await call.users.link(await body_of(request, AdminLink), call.meta)

    @post("/invite", status_code=HTTP_200_OK, summary="Invite by mail")
    async def invite(
        self,
        request: AnyRequest,
        call: Call,
        redirect_to: Annotated[str | None, QueryParameter(max_length=2000)] = None,
    ) -> dict[str, Any]:
        """The service key makes the account and mails it a sign-in code; an org's key
        invites the address into its org (as a member), the same answer either way."""
        body = await body_of(request, InviteBody)
        if call.ctx is None:
            return await call.users.invite(body.email, body.data, redirect_to, call.meta)
        await call.tenancy.invitations.create(call.ctx, body.email, "member", call.meta)
        return signed_up_json(stand_in(body.email.strip().lower(), None), body.data or {})


gotrue_admin_handlers: list[ControllerRouterHandler] = [GoTrueAdminController]
