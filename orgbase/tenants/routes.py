"""HTTP routes of the tenancy area: orgs, members, invitations, settings, audit, platform."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler

from orgbase.core.accounts import PlatformUser
from orgbase.core.audit_reads import AuditFilter
from orgbase.core.errors import Invalid, PreconditionRequired
from orgbase.core.times import parse_time
from orgbase.tenants.auth_policy_routes import AuthPolicyController
from orgbase.tenants.route_parts import Caller, Ctx, Meta, Tenancy, acting
from orgbase.tenants.schemas import (
    Accepted,
    AuditPage,
    ImpersonationCreate,
    ImpersonationToken,
    Invitation,
    InvitationAccept,
    InvitationCreate,
    Member,
    MemberUpdate,
    Org,
    OrgCreate,
    OrgUpdate,
    Page,
    PlatformOrg,
    SettingsDocument,
    SettingsWrite,
)
from orgbase.tenants.sso_routes import sso_handlers

IfMatch = Annotated[str | None, HeaderParameter(name="if-match", max_length=64)]
# Bounds of the columns these numbers are compared with (integer and bigint): a larger
# number is a 400, not a value the driver cannot send.
SettingsVersion = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
AuditCursor = Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)]
_VERSION_TAG = re.compile(r'(?:W/)?"?([0-9]{1,9})"?')
PageSize = Annotated[int, QueryParameter(ge=1, le=500)]
PageOffset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
Paged = NamedDependency[Page]


def _version(if_match: str | None, *, required: bool) -> int | None:
    if if_match is None:
        if required:
            raise PreconditionRequired(
                "send If-Match: <version> so concurrent changes are not lost",
                code="if_match_required",
            )
        return None
    match = _VERSION_TAG.fullmatch(if_match.strip())
    if not match:
        raise Invalid('If-Match must be a settings version like "3"', code="invalid_if_match")
    return int(match.group(1))


def _with_etag(document: SettingsDocument) -> Response[SettingsDocument]:
    return Response(document, headers={"ETag": f'"{document.version}"'})


def inviting(name: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A POST (the handler ``name``) that invites by email, mailed through the outbox:
    the members' and the invitations' routes both declare one."""

    async def handler(
        _: object,  # the controller
        data: JSONBody[InvitationCreate],
        tenancy: Tenancy,
        ctx: Ctx,
        meta: Meta,
    ) -> Invitation:
        return await tenancy.invitations.create(ctx, data.email, data.role, meta)

    handler.__name__ = handler.__qualname__ = name
    return post("/", summary=summary, **options)(handler)


class OrgController(Controller):
    path = "/v1/orgs"
    tags = ["orgs"]  # noqa: RUF012 - Litestar's declaration style

    @post("/", summary="Create an org (you become its owner)")
    async def create(
        self, data: JSONBody[OrgCreate], tenancy: Tenancy, principal: Caller, meta: Meta
    ) -> Org:
        return await tenancy.orgs.create(principal, data.name, meta)

    @get("/", summary="The orgs I belong to, with my role")
    async def list_mine(self, tenancy: Tenancy, principal: Caller) -> list[Org]:
        return await tenancy.orgs.list_mine(principal)

    @get("/{org_id:uuid}", summary="Read an org")
    async def read(self, tenancy: Tenancy, ctx: Ctx) -> Org:
        return await tenancy.orgs.get(ctx)

    @patch("/{org_id:uuid}", summary="Rename an org (admins)")
    async def rename(
        self, data: JSONBody[OrgUpdate], tenancy: Tenancy, ctx: Ctx, meta: Meta
    ) -> Org:
        return await tenancy.orgs.rename(ctx, data.name, meta)

    @delete("/{org_id:uuid}", summary="Delete an org with all its data (owners)")
    async def remove(self, tenancy: Tenancy, ctx: Ctx, meta: Meta) -> None:
        await tenancy.orgs.delete(ctx, meta)


class MemberController(Controller):
    path = "/v1/orgs/{org_id:uuid}/members"
    tags = ["members"]  # noqa: RUF012

    @get("/", summary="Members and their roles")
    async def list_members(self, tenancy: Tenancy, ctx: Ctx) -> list[Member]:
        return await tenancy.members.members(ctx)

    # Nobody is added without their consent, and the answer is the same whether the
    # address has an account or not: an invitation, as ``POST .../invitations``.
    add = inviting(
        "add",
        "Invite by email (admins; up to your own role): the person joins by accepting",
        status_code=HTTP_202_ACCEPTED,
    )

    @patch("/{user_id:uuid}", summary="Change a member's role (admins)")
    async def change(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[MemberUpdate],
        tenancy: Tenancy,
        ctx: Ctx,
        meta: Meta,
    ) -> Member:
        return await tenancy.members.change_role(ctx, user_id, data.role, meta)

    @delete("/{user_id:uuid}", summary="Remove a member (admins), or leave (yourself)")
    async def remove(self, user_id: FromPath[UUID], tenancy: Tenancy, ctx: Ctx, meta: Meta) -> None:
        await tenancy.members.remove_member(ctx, user_id, meta)


class InvitationController(Controller):
    path = "/v1/orgs/{org_id:uuid}/invitations"
    tags = ["invitations"]  # noqa: RUF012

    create = inviting("create", "Invite by email (admins); mailed through the outbox")

    @get("/", summary="The org's invitations (admins)")
    async def list_invitations(self, tenancy: Tenancy, ctx: Ctx) -> list[Invitation]:
        return await tenancy.invitations.list_for_org(ctx)

    @delete("/{invitation_id:uuid}", summary="Revoke a pending invitation (admins)")
    async def revoke(
        self, invitation_id: FromPath[UUID], tenancy: Tenancy, ctx: Ctx, meta: Meta
    ) -> None:
        await tenancy.invitations.revoke(ctx, invitation_id, meta)


@acting(
    "/v1/invitations/accept",
    tags=["invitations"],
    summary="Accept an invitation (signed in as the invited email)",
)
async def accept_invitation(
    data: JSONBody[InvitationAccept], tenancy: Tenancy, principal: Caller, meta: Meta
) -> Accepted:
    return await tenancy.invitations.accept(principal, data.token, meta)


class SettingsController(Controller):
    path = "/v1/orgs/{org_id:uuid}/settings"
    tags = ["settings"]  # noqa: RUF012

    @get("/", summary="The org's settings document (ETag: its version)")
    async def read(self, tenancy: Tenancy, ctx: Ctx) -> Response[SettingsDocument]:
        return _with_etag(await tenancy.settings.get(ctx))

    @put("/", summary="Replace the settings (admins); If-Match: <version> is required")
    async def write(
        self,
        data: JSONBody[SettingsWrite],
        tenancy: Tenancy,
        ctx: Ctx,
        meta: Meta,
        if_match: IfMatch = None,
    ) -> Response[SettingsDocument]:
        version = _version(if_match, required=True)
        assert version is not None
        return _with_etag(await tenancy.settings.put(ctx, data.settings, version, meta))

    @get("/versions", summary="Every version, newest first")
    async def versions(
        self, tenancy: Tenancy, ctx: Ctx, limit: PageSize = 100
    ) -> list[SettingsDocument]:
        return await tenancy.settings.versions(ctx, limit)

    @acting("/rollback/{version:int}", summary="Make a new version equal to an old one (admins)")
    async def rollback(
        self,
        version: SettingsVersion,
        tenancy: Tenancy,
        ctx: Ctx,
        meta: Meta,
        if_match: IfMatch = None,
    ) -> Response[SettingsDocument]:
        expected = _version(if_match, required=False)
        return _with_etag(await tenancy.settings.rollback(ctx, version, expected, meta))


@get("/v1/orgs/{org_id:uuid}/audit", tags=["audit"], summary="The org's audit log (admins)")
async def read_audit(  # noqa: PLR0917 - one parameter per query filter
    tenancy: Tenancy,
    ctx: Ctx,
    action: Annotated[str | None, QueryParameter(max_length=100)] = None,
    actor: Annotated[UUID | None, QueryParameter()] = None,
    table: Annotated[str | None, QueryParameter(max_length=200)] = None,
    since: Annotated[str | None, QueryParameter(max_length=40, description="ISO 8601")] = None,
    until: Annotated[str | None, QueryParameter(max_length=40, description="ISO 8601")] = None,
    before: AuditCursor = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> AuditPage:
    times = parse_time(since, "since"), parse_time(until, "until")
    query = AuditFilter(action, actor, table, *times, before, limit)
    return await tenancy.audit.page(ctx, query)


def provide_page(limit: PageSize = 100, offset: PageOffset = 0) -> Page:
    return Page(limit, offset)


class PlatformController(Controller):
    path = "/v1/platform"
    tags = ["platform"]  # noqa: RUF012
    dependencies = {"page": Provide(provide_page, sync_to_thread=False)}  # noqa: RUF012

    @get("/orgs", summary="Every org (platform admins)")
    async def orgs(self, tenancy: Tenancy, principal: Caller, page: Paged) -> list[PlatformOrg]:
        return await tenancy.platform.orgs(principal, page)

    @get("/users", summary="Every user (platform admins)")
    async def users(self, tenancy: Tenancy, principal: Caller, page: Paged) -> list[PlatformUser]:
        return await tenancy.platform.users(principal, page)

    @post(
        "/orgs/{org_id:uuid}/impersonate",
        summary="Read-only access to one org for a while, with a reason (audited in the org)",
    )
    async def impersonate(
        self,
        org_id: FromPath[UUID],
        data: JSONBody[ImpersonationCreate],
        tenancy: Tenancy,
        principal: Caller,
        meta: Meta,
    ) -> ImpersonationToken:
        return await tenancy.platform.impersonate(principal, org_id, data.reason, meta)


tenancy_handlers: list[ControllerRouterHandler] = [
    OrgController,
    MemberController,
    InvitationController,
    accept_invitation,
    SettingsController,
    read_audit,
    PlatformController,
    AuthPolicyController,
    *sso_handlers,
]
