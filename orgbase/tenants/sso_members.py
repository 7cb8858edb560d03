"""An admin's decision about an SSO-bound membership: release it from the org's SSO.

A membership bound to the org's SSO needs a session the org's provider signed in; once
its address left the org's verified domains it gives no access at all (403
``sso_membership_suspended``) until an admin decides: remove the member (the members
route), or release the binding here (the member may then sign in as any member does).
A security setting: an admin at aal2, never a key, never for themselves (the admin enters
the org under its sign-in policy like anyone: a bound admin through the org's provider);
audited and mailed to every owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from uuid import UUID

from orgbase.core import rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta, Role
from orgbase.core.errors import Forbidden, NotFound
from orgbase.core.postgres import Database
from orgbase.tenants.sign_in_notice import SignInChanges


@dataclass(eq=False)
class SsoMemberships:
    db: Database
    changes: SignInChanges

    async def release(self, ctx: OrgContext, user_id: UUID, meta: RequestMeta) -> None:
        rbac.require_security_admin(ctx, "releasing a membership from the org's SSO")
        if user_id == ctx.user_id:
            # A bound admin who could release themselves could leave the org's provider
            # (then its domain) and keep the org with a password: another admin decides.
            raise Forbidden(
                "you cannot release your own membership from the org's SSO",
                code="sso_self_release",
                hint="another admin of the org may release it",
            )
        async with self.db.system_connection() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT role, sso_bound FROM orgbase.memberships"
                " WHERE org_id = $1 AND user_id = $2 FOR UPDATE",
                ctx.org_id,
                user_id,
            )
            member = await self.changes.accounts.profiles(connection, [user_id])
            if row is None or user_id not in member:
                raise NotFound("no such member", code="member_not_found")
            email = member[user_id].email
            rbac.require_can_manage(ctx, cast("Role", row["role"]))
            if not row["sso_bound"]:
                return
            await connection.execute(
                "UPDATE orgbase.memberships SET sso_bound = false, updated_at = now()"
                " WHERE org_id = $1 AND user_id = $2",
                ctx.org_id,
                user_id,
            )
            event = AuditEvent.in_org(
                ctx,
                meta,
                "member.sso_released",
                row_key={"user_id": str(user_id)},
                details={"email": email},
            )
            what = f"the membership of {email} was released from the org's SSO"
            await self.changes.record(connection, ctx, event, "sso_released", what=what)
        await self.changes.publish(ctx.org_id, "relaxed")
