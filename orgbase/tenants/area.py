"""Builds the tenancy area's objects from settings and the shared clients."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.accounts import Accounts
from orgbase.core.events import EventBus
from orgbase.core.resources import Resources
from orgbase.core.tasks import TaskSet
from orgbase.tenants.audit_log import AuditLogService
from orgbase.tenants.context import OrgContextResolver
from orgbase.tenants.directory import LiveOrgRows, OrgDirectory
from orgbase.tenants.domain_proof import DnsProver
from orgbase.tenants.invitations import InvitationService
from orgbase.tenants.mail_queue import MailQueue
from orgbase.tenants.members import MemberService
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.org_settings import OrgSettingsService
from orgbase.tenants.orgs import OrgService
from orgbase.tenants.outbox import OutboxDispatcher
from orgbase.tenants.owner_mail import OwnerMail
from orgbase.tenants.platform_admin import PlatformService, TokenIssuer
from orgbase.tenants.sign_in_notice import SignInChanges
from orgbase.tenants.sso_domains import DomainClaims
from orgbase.tenants.sso_members import SsoMemberships
from orgbase.tenants.sso_provider import IssuerCheck, SsoProviders


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
    directory: OrgDirectory
    """What the other areas ask about memberships and SSO (``core.orgs``)."""
    live_orgs: LiveOrgRows
    mail: MailQueue
    """The outbox, for every area (``core.mail.Outbox``)."""


def build_tenancy(
    resources: Resources,
    issue_token: TokenIssuer,
    accounts: Accounts,
    *,
    events: EventBus,
    tasks: TaskSet,
    check_issuer: IssuerCheck,
) -> TenancyArea:
    """``accounts``: the auth area's answers about accounts (addresses, admins, keys);
    ``events`` and ``tasks``: the gateway's bus, on which the area tells what others must
    hear, and its task set; ``check_issuer``: the auth area's check of an org's OpenID
    provider before it is saved."""
    settings = resources.settings
    db = resources.db
    memberships = MembershipCache(
        db, resources.redis, settings.tenancy.membership_cache_seconds, events
    )
    resources.redis.on_recovery(memberships.resync)
    contexts = OrgContextResolver(db, memberships, accounts, events)
    mail = MailQueue(accounts)
    changes = SignInChanges(OwnerMail(accounts, mail), contexts.policy_changed)
    return TenancyArea(
        memberships=memberships,
        contexts=contexts,
        orgs=OrgService(db, memberships, accounts, events, tasks),
        members=MemberService(db, memberships, accounts),
        invitations=InvitationService(db, memberships, settings, accounts, mail),
        settings=OrgSettingsService(db, settings.tenancy.settings_max_bytes),
        audit=AuditLogService(db, resources.replicas),
        platform=PlatformService(db, issue_token, settings.tenancy.impersonation_minutes, accounts),
        outbox=OutboxDispatcher(db, settings.smtp),
        sso_providers=SsoProviders(
            db, settings.is_dev, changes, events=events, check_issuer=check_issuer
        ),
        sso_domains=DomainClaims(db, DnsProver(settings.tenancy), changes),
        sso_members=SsoMemberships(db, changes),
        directory=OrgDirectory(db, memberships, accounts),
        live_orgs=LiveOrgRows(),
        mail=mail,
    )
