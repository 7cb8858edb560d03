"""Builds the tenancy area's objects from settings and the shared clients."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.tenants.audit_log import AuditLogService
from orgbase.tenants.context import OrgContextResolver
from orgbase.tenants.domain_proof import DnsProver
from orgbase.tenants.invitations import InvitationService
from orgbase.tenants.members import MemberService
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.org_settings import OrgSettingsService
from orgbase.tenants.orgs import OrgService
from orgbase.tenants.outbox import OutboxDispatcher
from orgbase.tenants.platform_admin import PlatformService, TokenIssuer
from orgbase.tenants.sso_domains import DomainClaims
from orgbase.tenants.sso_members import SsoMemberships
from orgbase.tenants.sso_provider import SsoProviders


@dataclass
class TenancyArea:
    memberships: MembershipCache
    contexts: OrgContextResolver
    orgs: OrgService
    members: MemberService
    invitations: InvitationService
    settings: OrgSettingsService
    audit: AuditLogService
    platform: PlatformService
    outbox: OutboxDispatcher
    sso_providers: SsoProviders
    sso_domains: DomainClaims
    sso_members: SsoMemberships

    def start(self) -> None:
        self.outbox.start()
        self.orgs.start()

    async def stop(self) -> None:
        await self.orgs.stop()
        await self.outbox.stop()


def build_tenancy(
    settings: Settings, resources: Resources, issue_token: TokenIssuer
) -> TenancyArea:
    memberships = MembershipCache(
        resources.db, resources.redis, settings.tenancy.membership_cache_seconds
    )
    resources.redis.on_recovery(memberships.resync)
    contexts = OrgContextResolver(resources.db, memberships)
    return TenancyArea(
        memberships=memberships,
        contexts=contexts,
        orgs=OrgService(resources.db, memberships),
        members=MemberService(resources.db, memberships),
        invitations=InvitationService(resources.db, memberships, settings),
        settings=OrgSettingsService(resources.db, settings.tenancy.settings_max_bytes),
        audit=AuditLogService(resources.db, resources.replicas),
        platform=PlatformService(resources.db, issue_token, settings.tenancy.impersonation_minutes),
        outbox=OutboxDispatcher(resources.db, settings.smtp),
        sso_providers=SsoProviders(resources.db, settings.is_dev, contexts.policy_changed),
        sso_domains=DomainClaims(
            resources.db, DnsProver(settings.tenancy), contexts.policy_changed
        ),
        sso_members=SsoMemberships(resources.db, contexts.policy_changed),
    )
