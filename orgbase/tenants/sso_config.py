"""An org's SSO configuration (org admins): its OpenID provider and its email domains.

A domain belongs to one org and counts once a platform admin verified it (an org cannot
claim another company's users by naming their domain). From then on, users of that domain
reach the org only with a session its provider signed in (403 ``sso_required``), and
their first sign-in through it makes them members with the configured default role.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT
from msgspec import Meta

from orgbase.core import audit, destinations, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, Principal, RequestMeta
from orgbase.core.errors import Conflict, Invalid, NotFound
from orgbase.core.settings import Settings
from orgbase.tenants.area import TenancyArea

_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
Ctx = NamedDependency[OrgContext]
Tenancy = NamedDependency[TenancyArea]
Meta_ = NamedDependency[RequestMeta]


class SsoSettings(msgspec.Struct, forbid_unknown_fields=True):
    issuer: Annotated[str, Meta(min_length=8, max_length=500)]
    client_id: Annotated[str, Meta(min_length=1, max_length=500)]
    client_secret: Annotated[str, Meta(min_length=1, max_length=500)]
    default_role: Literal["admin", "member", "viewer"] = "member"


class SsoDomain(msgspec.Struct):
    domain: str
    verified: bool


class SsoConfig(msgspec.Struct):
    issuer: str | None
    client_id: str | None
    default_role: str | None
    domains: list[SsoDomain]
    sign_in_url: str | None
    """Where members start a sign-in (GET /auth/v1/authorize?provider=sso:<org>)."""


class DomainCreate(msgspec.Struct, forbid_unknown_fields=True):
    domain: Annotated[str, Meta(min_length=3, max_length=253)]


def _domain(raw: str) -> str:
    domain = raw.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise Invalid("that is not a domain name", code="invalid_domain")
    return domain


async def _config(tenancy: TenancyArea, org_id: UUID) -> SsoConfig:
    async with tenancy.orgs.db.system_connection() as connection:
        row = await connection.fetchrow(
            "SELECT issuer, client_id, default_role FROM orgbase.org_sso WHERE org_id = $1", org_id
        )
        domains = await connection.fetch(
            "SELECT domain, verified_at IS NOT NULL AS verified FROM orgbase.org_sso_domains"
            " WHERE org_id = $1 ORDER BY domain",
            org_id,
        )
    return SsoConfig(
        issuer=row["issuer"] if row else None,
        client_id=row["client_id"] if row else None,
        default_role=row["default_role"] if row else None,
        domains=[SsoDomain(d["domain"], d["verified"]) for d in domains],
        sign_in_url=f"/auth/v1/authorize?provider=sso:{org_id}" if row else None,
    )


class SsoController(Controller):
    path = "/v1/orgs/{org_id:uuid}/sso"
    tags = ["orgs"]  # noqa: RUF012 - Litestar's declaration style

    @get("/", summary="The org's SSO provider and domains (admins)")
    async def read(self, ctx: Ctx, tenancy: Tenancy) -> SsoConfig:
        rbac.require(ctx, "admin", "read the org's SSO settings")
        return await _config(tenancy, ctx.org_id)

    @put("/", summary="Set the org's OpenID provider (admins; the secret is never shown)")
    async def configure(
        self,
        data: JSONBody[SsoSettings],
        ctx: Ctx,
        tenancy: Tenancy,
        meta: Meta_,
        gateway_settings: NamedDependency[Settings],
    ) -> SsoConfig:
        rbac.require(ctx, "admin", "change the org's SSO settings")
        issuer = urlsplit(data.issuer)
        secure = issuer.scheme == "https" or (gateway_settings.is_dev and issuer.scheme == "http")
        if not secure or not issuer.hostname or issuer.query or issuer.fragment:
            raise Invalid("the issuer must be an https URL", code="invalid_issuer")
        await _public_issuer(data.issuer, allow_loopback=gateway_settings.is_dev)
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                """
                INSERT INTO orgbase.org_sso (org_id, issuer, client_id, client_secret, default_role)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (org_id) DO UPDATE SET issuer = $2, client_id = $3,
                    client_secret = $4, default_role = $5, updated_at = now()
                """,
                ctx.org_id,
                data.issuer,
                data.client_id,
                data.client_secret,
                data.default_role,
            )
            details: dict[str, Any] = {"issuer": data.issuer, "default_role": data.default_role}
            event = AuditEvent.in_org(ctx, meta, "org.sso_configured", details=details)
            await audit.record(connection, event)
        return await _config(tenancy, ctx.org_id)

    @delete("/", status_code=HTTP_204_NO_CONTENT, summary="Turn the org's SSO off (admins)")
    async def remove(self, ctx: Ctx, tenancy: Tenancy, meta: Meta_) -> None:
        rbac.require(ctx, "admin", "change the org's SSO settings")
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM orgbase.org_sso WHERE org_id = $1", ctx.org_id)
            await connection.execute(
                "DELETE FROM orgbase.org_sso_domains WHERE org_id = $1", ctx.org_id
            )
            await audit.record(connection, AuditEvent.in_org(ctx, meta, "org.sso_removed"))
        await tenancy.contexts.policy_changed(ctx.org_id, "relaxed")

    @post("/domains", summary="Claim an email domain (admins; a platform admin verifies it)")
    async def add_domain(
        self, data: JSONBody[DomainCreate], ctx: Ctx, tenancy: Tenancy, meta: Meta_
    ) -> SsoDomain:
        rbac.require(ctx, "admin", "change the org's SSO settings")
        domain = _domain(data.domain)
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            try:
                await connection.execute(
                    "INSERT INTO orgbase.org_sso_domains (domain, org_id) VALUES ($1, $2)",
                    domain,
                    ctx.org_id,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("this domain is claimed already", code="domain_taken") from None
            event = AuditEvent.in_org(ctx, meta, "org.sso_domain_added", details={"domain": domain})
            await audit.record(connection, event)
        return SsoDomain(domain, verified=False)

    @delete("/domains/{domain:str}", status_code=HTTP_204_NO_CONTENT, summary="Drop a domain")
    async def drop_domain(
        self, domain: FromPath[str], ctx: Ctx, tenancy: Tenancy, meta: Meta_
    ) -> None:
        rbac.require(ctx, "admin", "change the org's SSO settings")
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            gone = await connection.fetchval(
                "DELETE FROM orgbase.org_sso_domains WHERE domain = $1 AND org_id = $2"
                " RETURNING domain",
                domain.lower(),
                ctx.org_id,
            )
            if gone is None:
                raise NotFound("no such domain", code="domain_not_found")
            event = AuditEvent.in_org(ctx, meta, "org.sso_domain_removed", details={"domain": gone})
            await audit.record(connection, event)
        await tenancy.contexts.policy_changed(ctx.org_id, "relaxed")


class SsoDomainVerification(Controller):
    path = "/v1/platform/sso-domains"
    tags = ["platform"]  # noqa: RUF012

    @post("/{domain:str}/verify", summary="Verify an org's claim to a domain (platform admins)")
    async def verify(
        self,
        domain: FromPath[str],
        principal: NamedDependency[Principal],
        tenancy: Tenancy,
        meta: Meta_,
    ) -> SsoDomain:
        admin_id = await tenancy.platform.require_admin(principal)
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            org_id = await connection.fetchval(
                "UPDATE orgbase.org_sso_domains SET verified_at = now()"
                " WHERE domain = $1 RETURNING org_id",
                domain.lower(),
            )
            if org_id is None:
                raise NotFound("no org claims this domain", code="domain_not_found")
            event = AuditEvent.by_user(
                admin_id, meta, "org.sso_domain_verified", org_id=org_id, details={"domain": domain}
            )
            await audit.record(connection, event)
        await tenancy.contexts.policy_changed(org_id, "sso_required")
        return SsoDomain(domain.lower(), verified=True)


async def _public_issuer(issuer: str, *, allow_loopback: bool) -> None:
    """The gateway fetches the issuer's discovery document: an org admin must not be able
    to point it at an internal address (checked again at every fetch)."""
    policy = destinations.DestinationPolicy(
        allowed_hosts=frozenset(), allow_loopback=allow_loopback
    )
    try:
        await destinations.resolve(issuer, policy)
    except Invalid as exc:
        raise Invalid(
            f"The issuer cannot be used: {exc.message}",
            code="sso_provider_refused",
            hint="The provider must be reachable at a public https address.",
        ) from None
