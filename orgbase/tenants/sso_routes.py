"""An org's SSO configuration: its OpenID provider and its email domains (routes).

Org admins read it; only an owner at aal2 changes it (never an API key): the provider
(``sso_provider``) and the domains (``sso_domains``: a claim per org, proven by a TXT
record in the domain's DNS or approved, claim by claim, by a platform admin). Users of a
verified domain, and memberships bound to the org's SSO, reach the org only with a session
its provider signed in (403 ``sso_required``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from orgbase.core import rbac
from orgbase.tenants.area import TenancyArea
from orgbase.tenants.route_parts import Caller, Ctx, Meta, Tenancy, acting
from orgbase.tenants.sso_domains import DomainClaim, SsoDomain
from orgbase.tenants.sso_provider import SsoSettings


class SsoConfig(msgspec.Struct):
    issuer: str | None
    client_id: str | None
    default_role: str | None
    domains: list[SsoDomain]
    sign_in_url: str | None
    """Where members start a sign-in (GET /auth/v1/authorize?provider=sso:<org>)."""


class DomainCreate(msgspec.Struct, forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(min_length=3, max_length=253)]


async def _config(tenancy: TenancyArea, org_id: UUID) -> SsoConfig:
    async with tenancy.orgs.db.system_connection() as connection:
        row = await connection.fetchrow(
            "SELECT issuer, client_id, default_role FROM orgbase.org_sso WHERE org_id = $1", org_id
        )
    return SsoConfig(
        issuer=row["issuer"] if row else None,
        client_id=row["client_id"] if row else None,
        default_role=row["default_role"] if row else None,
        domains=await tenancy.sso_domains.listing(org_id),
        sign_in_url=f"/auth/v1/authorize?provider=sso:{org_id}" if row else None,
    )


class SsoController(Controller):
    path = "/v1/orgs/{org_id:uuid}/sso"
    tags = ["orgs"]  # noqa: RUF012 - Litestar's declaration style

    @get("/", summary="The org's SSO provider and domains (admins)")
    async def read(self, ctx: Ctx, tenancy: Tenancy) -> SsoConfig:
        rbac.require(ctx, "admin", "read the org's SSO settings")
        return await _config(tenancy, ctx.org_id)

    @put("/", summary="Set the org's OpenID provider (an owner at aal2; the secret is never shown)")
    async def configure(
        self, data: JSONBody[SsoSettings], ctx: Ctx, tenancy: Tenancy, meta: Meta
    ) -> SsoConfig:
        await tenancy.sso_providers.configure(ctx, data, meta)
        return await _config(tenancy, ctx.org_id)

    @delete("/", summary="Turn the org's SSO off (an owner)")
    async def remove(self, ctx: Ctx, tenancy: Tenancy, meta: Meta) -> None:
        await tenancy.sso_providers.remove(ctx, meta)

    @post("/domains", summary="Claim an email domain (an owner at aal2); prove it in DNS")
    async def add_domain(
        self, data: JSONBody[DomainCreate], ctx: Ctx, tenancy: Tenancy, meta: Meta
    ) -> SsoDomain:
        """The answer names the TXT record that proves the claim (``verification``)."""
        return await tenancy.sso_domains.claim(ctx, data.domain, meta)

    @acting(
        "/domains/{domain:str}/verify",
        summary="Verify the org's claim: the gateway looks up its TXT record (an owner at aal2)",
    )
    async def verify_domain(
        self, domain: FromPath[str], ctx: Ctx, tenancy: Tenancy, meta: Meta
    ) -> SsoDomain:
        return await tenancy.sso_domains.verify_by_dns(ctx, domain, meta)

    @delete("/domains/{domain:str}", summary="Drop a domain")
    async def drop_domain(
        self, domain: FromPath[str], ctx: Ctx, tenancy: Tenancy, meta: Meta
    ) -> None:
        await tenancy.sso_domains.drop(ctx, domain, meta)


class SsoMembershipController(Controller):
    path = "/v1/orgs/{org_id:uuid}/members/{user_id:uuid}/sso-binding"
    tags = ["orgs"]  # noqa: RUF012

    @delete("/", summary="Release a member from the org's SSO (an admin at aal2)")
    async def release(
        self, user_id: FromPath[UUID], ctx: Ctx, tenancy: Tenancy, meta: Meta
    ) -> None:
        """A bound member whose address left the org's verified domains has no access
        (``sso_membership_suspended``) until an admin releases them here or removes them."""
        await tenancy.sso_members.release(ctx, user_id, meta)


class SsoDomainVerification(Controller):
    path = "/v1/platform/sso-domains"
    tags = ["platform"]  # noqa: RUF012

    @post(
        "/{domain:str}/claims/{org_id:uuid}/verify",
        summary="Approve one org's claim to a domain (platform admins)",
    )
    async def verify(
        self,
        domain: FromPath[str],
        org_id: FromPath[UUID],
        principal: Caller,
        tenancy: Tenancy,
        meta: Meta,
    ) -> SsoDomain:
        """Names the org whose claim is approved: any number of orgs may claim a domain,
        and approving one never approves another's."""
        admin_id = await tenancy.platform.require_admin(principal)
        return await tenancy.sso_domains.approve(admin_id, org_id, domain, meta)

    @get("/{domain:str}/claims", summary="The orgs that claim a domain (platform admins)")
    async def claims(
        self, domain: FromPath[str], principal: Caller, tenancy: Tenancy
    ) -> list[DomainClaim]:
        await tenancy.platform.require_admin(principal)
        return await tenancy.sso_domains.claims_of(domain)


sso_handlers: list[ControllerRouterHandler] = [
    SsoController,
    SsoMembershipController,
    SsoDomainVerification,
]
