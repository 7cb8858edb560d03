"""An org's claims of email domains, and their proof.

A claim is per (org, domain): any number of orgs may hold a pending claim on a domain (a
squatter's claim blocks nobody), and at most one claim per domain is verified (a unique
index). A claim is verified by the TXT record of its own token in the domain's DNS, or by
a platform admin approving that one named claim. Claiming, verifying and dropping are an
owner's acts at aal2 (never an API key); each is audited and mailed to every owner.

Verifying binds the org's memberships whose address is on the domain to its SSO (a
trigger, sql/rls/0020); dropping a domain releases the memberships of that domain (the
owner's decision), while a bound member whose address has left the domain stays suspended
until an admin releases or removes them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from orgbase.core import rbac
from orgbase.core.accounts import Accounts, email_domain
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta
from orgbase.core.domains import domain_name
from orgbase.core.errors import Conflict, Invalid, NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.tenants.domain_proof import DnsProver, DomainChallenge, challenge_for
from orgbase.tenants.sign_in_notice import SignInChanges

MAX_CLAIMS_PER_ORG = 50
ACTION = "changing the org's SSO domains"

_BOUND = "SELECT user_id FROM orgbase.memberships WHERE org_id = $1 AND sso_bound"
_RELEASE = """
UPDATE orgbase.memberships SET sso_bound = false, updated_at = now()
WHERE org_id = $1 AND user_id = ANY($2::uuid[]) AND sso_bound
"""
_CLAIM = """
SELECT d.org_id, d.domain, d.token, d.verified_at IS NOT NULL AS verified
FROM orgbase.org_sso_domains d JOIN orgbase.orgs o ON o.id = d.org_id AND o.deleted_at IS NULL
WHERE d.org_id = $1 AND d.domain = $2
"""


class SsoDomain(msgspec.Struct):
    domain: str
    verified: bool
    verification: DomainChallenge | None = None
    """While pending: the TXT record to publish, then POST .../verify."""


class DomainClaim(msgspec.Struct):
    """One org's claim of a domain, as a platform admin sees it."""

    org_id: UUID
    org_name: str
    verified: bool
    created_at: datetime


def _not_claimed() -> NotFound:
    return NotFound("this org has no claim on that domain", code="domain_not_found")


async def release_domains(
    connection: Connection, accounts: Accounts, org_id: UUID, domains: list[str]
) -> int:
    """The org no longer asks its SSO of these domains' members: their memberships are
    ordinary ones again. Returns how many were released."""
    bound = [r["user_id"] for r in await connection.fetch(_BOUND, org_id)]
    if not bound or not domains:
        return 0
    profiles = await accounts.profiles(connection, bound)
    released = [
        user for user, profile in profiles.items() if email_domain(profile.email) in domains
    ]
    result = await connection.execute(_RELEASE, org_id, released)
    return int(result.split()[-1])


@dataclass(eq=False)
class DomainClaims:
    db: Database
    prover: DnsProver
    changes: SignInChanges

    async def listing(self, org_id: UUID) -> list[SsoDomain]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                "SELECT domain, token, verified_at IS NOT NULL AS verified"
                " FROM orgbase.org_sso_domains WHERE org_id = $1 ORDER BY domain",
                org_id,
            )
        return [
            SsoDomain(
                r["domain"],
                r["verified"],
                None if r["verified"] else challenge_for(r["domain"], r["token"]),
            )
            for r in rows
        ]

    async def claims_of(self, raw: str) -> list[DomainClaim]:
        domain = domain_name(raw)
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                "SELECT d.org_id, o.name AS org_name, d.verified_at IS NOT NULL AS verified,"
                " d.created_at FROM orgbase.org_sso_domains d"
                " JOIN orgbase.orgs o ON o.id = d.org_id AND o.deleted_at IS NULL"
                " WHERE d.domain = $1 ORDER BY d.created_at",
                domain,
            )
        return [DomainClaim(**dict(r)) for r in rows]

    async def claim(self, ctx: OrgContext, raw: str, meta: RequestMeta) -> SsoDomain:
        rbac.require_security_admin(ctx, ACTION, minimum="owner")
        domain = domain_name(raw)
        token = secrets.token_hex(20)
        async with self.db.system_connection() as connection, connection.transaction():
            claims = await connection.fetchval(
                "SELECT count(*) FROM orgbase.org_sso_domains WHERE org_id = $1", ctx.org_id
            )
            if claims >= MAX_CLAIMS_PER_ORG:
                raise Conflict(
                    f"an org claims at most {MAX_CLAIMS_PER_ORG} domains", code="too_many_domains"
                )
            made = await connection.fetchval(
                "INSERT INTO orgbase.org_sso_domains (domain, org_id, token) VALUES ($1, $2, $3)"
                " ON CONFLICT (org_id, domain) DO NOTHING RETURNING domain",
                domain,
                ctx.org_id,
                token,
            )
            if made is None:
                raise Conflict("this org claims that domain already", code="domain_claimed")
            event = AuditEvent.in_org(ctx, meta, "org.sso_domain_added", details={"domain": domain})
            what = f"the domain {domain} was claimed"
            await self.changes.record(connection, ctx, event, "sso_domain_added", what=what)
        return SsoDomain(domain, verified=False, verification=challenge_for(domain, token))

    async def _claim(self, org_id: UUID, domain: str) -> asyncpg.Record:
        """A live org's claim of the domain: its org_id, domain, token and whether it is
        verified (NotFound when there is none)."""
        async with self.db.system_connection() as connection:
            claim = await connection.fetchrow(_CLAIM, org_id, domain)
        if claim is None:
            raise _not_claimed()
        return claim

    async def verify_by_dns(self, ctx: OrgContext, raw: str, meta: RequestMeta) -> SsoDomain:
        """The org's own proof: its claim's token published in the domain's DNS."""
        rbac.require_security_admin(ctx, ACTION, minimum="owner")
        claim = await self._claim(ctx.org_id, domain_name(raw))
        if claim["verified"]:
            return SsoDomain(claim["domain"], verified=True)
        challenge = challenge_for(claim["domain"], claim["token"])
        if not await self.prover.published(challenge):
            raise Invalid(
                "the domain's DNS does not publish this claim's record",
                code="domain_not_proven",
                details={"record": msgspec.to_builtins(challenge)},
                hint=f"publish {challenge.type} {challenge.name} = {challenge.value!r}, then retry",
            )
        await self._mark_verified(claim, "dns", meta, ctx=ctx)
        return SsoDomain(claim["domain"], verified=True)

    async def approve(self, admin_id: UUID, org_id: UUID, raw: str, meta: RequestMeta) -> SsoDomain:
        """The manual path: a platform admin verifies ONE named claim (org and domain)."""
        claim = await self._claim(org_id, domain_name(raw))
        event = AuditEvent.by_user(
            admin_id,
            meta,
            "org.sso_domain_verified",
            org_id=org_id,
            details={"domain": claim["domain"], "via": "platform_admin"},
        )
        await self._mark_verified(claim, "platform_admin", meta, event=event)
        return SsoDomain(claim["domain"], verified=True)

    async def _mark_verified(
        self,
        claim: asyncpg.Record,
        via: str,
        meta: RequestMeta,
        *,
        ctx: OrgContext | None = None,
        event: AuditEvent | None = None,
    ) -> None:
        """Verify the claim whose token was proven (not a claim made again since). ``ctx``
        is the owner's who proved it; a platform admin's approval brings its own event."""
        org_id, domain = claim["org_id"], claim["domain"]
        async with self.db.system_connection() as connection, connection.transaction():
            try:
                done = await connection.fetchval(
                    "UPDATE orgbase.org_sso_domains SET verified_at = now(), verified_via = $4"
                    " WHERE org_id = $1 AND domain = $2 AND token = $3 AND verified_at IS NULL"
                    " RETURNING domain",
                    org_id,
                    domain,
                    claim["token"],
                    via,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    "another org has verified this domain",
                    code="domain_verified_elsewhere",
                    hint="it must drop the domain before another org can verify it",
                ) from None
            if done is None:
                return  # verified meanwhile (or dropped): nothing more to record
            if event is None:
                assert ctx is not None
                details = {"domain": domain, "via": via}
                event = AuditEvent.in_org(ctx, meta, "org.sso_domain_verified", details=details)
            what = (
                f"the domain {domain} was verified ({via.replace('_', ' ')}): its members now"
                " sign in through the org's SSO"
            )
            await self.changes.record(connection, ctx, event, "sso_domain_verified", what=what)
        await self.changes.publish(org_id, "sso_required")

    async def drop(self, ctx: OrgContext, raw: str, meta: RequestMeta) -> None:
        rbac.require_security_admin(ctx, ACTION, minimum="owner")
        domain = domain_name(raw)
        async with self.db.system_connection() as connection, connection.transaction():
            was_verified = await connection.fetchval(
                "DELETE FROM orgbase.org_sso_domains WHERE domain = $1 AND org_id = $2"
                " RETURNING verified_at IS NOT NULL",
                domain,
                ctx.org_id,
            )
            if was_verified is None:
                raise _not_claimed()
            released = await release_domains(
                connection, self.changes.accounts, ctx.org_id, [domain]
            )
            details = {"domain": domain, "memberships_released": released}
            event = AuditEvent.in_org(ctx, meta, "org.sso_domain_removed", details=details)
            what = f"the domain {domain} was dropped"
            if was_verified:
                what += f" ({released} memberships no longer bound to the org's SSO)"
            await self.changes.record(connection, ctx, event, "sso_domain_removed", what=what)
        await self.changes.publish(ctx.org_id, "relaxed")
