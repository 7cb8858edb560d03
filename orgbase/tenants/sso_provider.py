"""An org's own OpenID provider: set, replaced, removed (an owner's acts at aal2).

Replacing the issuer, or removing the provider, ends what the old provider held: the
accounts' links to it (an OpenID subject means something only at its own issuer: a new
provider's subject "123" is not the old one's) and the sessions it signed in. Those belong
to the auth area, which the gateway subscribes to ``OrgProviderReplaced``. Every change is
audited and mailed to every owner of the org.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from orgbase.core import destinations, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta
from orgbase.core.errors import Invalid
from orgbase.core.events import AfterCommit, EventBus, OrgProviderReplaced, after_commit
from orgbase.core.postgres import Database
from orgbase.tenants.sign_in_notice import SignInChanges
from orgbase.tenants.sso_domains import release_domains

ACTION = "changing the org's SSO provider"
IssuerCheck = Callable[[str], Awaitable[None]]
"""Raises when an issuer's discovery document names URLs the gateway would not use."""

_UPSERT = """
INSERT INTO orgbase.org_sso (org_id, issuer, client_id, client_secret, default_role)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (org_id) DO UPDATE SET issuer = $2, client_id = $3,
    client_secret = $4, default_role = $5, updated_at = now()
"""


class SsoSettings(msgspec.Struct, forbid_unknown_fields=True):
    issuer: Annotated[str, Meta(min_length=8, max_length=500)]
    client_id: Annotated[str, Meta(min_length=1, max_length=500)]
    client_secret: Annotated[str, Meta(min_length=1, max_length=500)]
    default_role: Literal["admin", "member", "viewer"] = "member"


def checked_issuer(issuer: str, *, dev: bool) -> None:
    """An https URL with a host, nothing after its path (http too in dev mode)."""
    invalid = Invalid("the issuer must be an https URL", code="invalid_issuer")
    try:
        parts = urlsplit(issuer)
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise invalid from None
    secure = parts.scheme == "https" or (dev and parts.scheme == "http")
    if not secure or not host or parts.query or parts.fragment or parts.username is not None:
        raise invalid


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


@dataclass(eq=False)
class SsoProviders:
    db: Database
    dev: bool
    changes: SignInChanges
    _: KW_ONLY
    events: EventBus
    """Told (``OrgProviderReplaced``, in the change's transaction) when the issuer
    changes or SSO is removed."""
    check_issuer: IssuerCheck
    """Asked before a provider is saved: its discovery document, when it answers, names
    only URLs the gateway will use (the auth area speaks OpenID)."""

    async def configure(self, ctx: OrgContext, data: SsoSettings, meta: RequestMeta) -> None:
        rbac.require_security_admin(ctx, ACTION, minimum="owner")
        checked_issuer(data.issuer, dev=self.dev)
        await _public_issuer(data.issuer, allow_loopback=self.dev)
        await self.check_issuer(data.issuer)
        after: list[AfterCommit] = []
        async with self.db.system_connection() as connection, connection.transaction():
            before = await connection.fetchval(
                "SELECT issuer FROM orgbase.org_sso WHERE org_id = $1 FOR UPDATE", ctx.org_id
            )
            await connection.execute(
                _UPSERT,
                ctx.org_id,
                data.issuer,
                data.client_id,
                data.client_secret,
                data.default_role,
            )
            if before is not None and before != data.issuer:
                replaced = OrgProviderReplaced(org_id=ctx.org_id)
                after = await self.events.publish_in_transaction(replaced, connection)
            details = {"issuer": data.issuer, "default_role": data.default_role}
            if before is not None:
                details["previous_issuer"] = before
            event = AuditEvent.in_org(ctx, meta, "org.sso_configured", details=details)
            what = f"its SSO provider is now {data.issuer} (new members: {data.default_role})"
            await self.changes.record(connection, ctx, event, "sso_configured", what=what)
        await after_commit(after)

    async def remove(self, ctx: OrgContext, meta: RequestMeta) -> None:
        rbac.require_security_admin(ctx, ACTION, minimum="owner")
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM orgbase.org_sso WHERE org_id = $1", ctx.org_id)
            domains = await connection.fetch(
                "DELETE FROM orgbase.org_sso_domains WHERE org_id = $1 RETURNING domain",
                ctx.org_id,
            )
            released = await release_domains(
                connection, self.changes.accounts, ctx.org_id, [r["domain"] for r in domains]
            )
            replaced = OrgProviderReplaced(org_id=ctx.org_id)
            after = await self.events.publish_in_transaction(replaced, connection)
            details = {"memberships_released": released}
            event = AuditEvent.in_org(ctx, meta, "org.sso_removed", details=details)
            what = "its SSO provider and domains were removed"
            await self.changes.record(connection, ctx, event, "sso_removed", what=what)
        await after_commit(after)
        await self.changes.publish(ctx.org_id, "relaxed")
