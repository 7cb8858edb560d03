"""Roles and what they may do (the RBAC matrix).

    action                                         viewer member admin owner
    read the org, its members and settings           x      x     x     x
    read tenant rows and documents                    x      x     x     x
    write own tenant rows and documents                      x     x     x
    write every tenant row and document                            x     x
    invite and add members, up to their own role                   x     x
    change or remove members whose role is at most
      their own (owners are changed only by owners)                x     x
    manage API keys (a key's role is at most theirs, and the key
      stops when its maker no longer holds that role)              x     x
    change settings, roll them back                                x     x
    change security settings (sign-in policy, SSO and its
      domains, webhook destinations): a person at aal2, never a key x     x
    read the audit log                                             x     x
    rename the org                                                 x     x
    delete the org                                                       x
    leave the org (not the last owner)                x      x     x     x

An org always keeps at least one owner. Nobody grants a role above their own, and an API
key grants nothing above member: admins and owners are made by a person (a key lives in
servers and scripts; a leaked admin key must not mint the admins who then change the
security settings a key may not).
"""

from __future__ import annotations

from orgbase.core.context import ROLE_RANK, OrgContext, Role
from orgbase.core.errors import Forbidden

ROLES: tuple[Role, ...] = ("viewer", "member", "admin", "owner")
KEY_GRANTS_AT_MOST: Role = "member"
"""The highest role an API key grants (adding, inviting, changing a member)."""


def require(ctx: OrgContext, minimum: Role, action: str) -> None:
    if ROLE_RANK[ctx.role] < ROLE_RANK[minimum]:
        raise Forbidden(
            f"{action} needs the {minimum} role (you are {ctx.role})",
            code="role_too_low",
            details={"required": minimum, "role": ctx.role},
        )


def can_invite(role: str) -> bool:
    """May this role invite or add members (and grant roles up to its own)?"""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK["admin"]


def require_admin_granting(ctx: OrgContext, role: Role, doing: str) -> None:
    """An admin's act that gives someone ``role`` (adding, inviting, changing a member):
    no one grants a role above their own."""
    require(ctx, "admin", doing)
    require_can_grant(ctx, role)


def require_can_grant(ctx: OrgContext, role: Role) -> None:
    if ctx.key_id is not None and ROLE_RANK[role] > ROLE_RANK[KEY_GRANTS_AT_MOST]:
        raise Forbidden(
            f"an API key cannot grant {role}: admins and owners are made by a person",
            code="human_admin_required",
            hint="an admin signed in grants it (an owner for owner)",
        )
    if ROLE_RANK[role] > ROLE_RANK[ctx.role]:
        raise Forbidden(
            f"you cannot grant {role}, a role above your own ({ctx.role})",
            code="role_escalation",
        )


def grant_ceiling(role: Role, *, by_key: bool) -> Role:
    """The highest role an inviter holding ``role`` grants (a key: at most member)."""
    if by_key and ROLE_RANK[role] > ROLE_RANK[KEY_GRANTS_AT_MOST]:
        return KEY_GRANTS_AT_MOST
    return role


def require_can_manage(ctx: OrgContext, current: Role) -> None:
    """May ``ctx`` change or remove a member who now has ``current``?"""
    if current == "owner" and ctx.role != "owner":
        raise Forbidden("only owners change or remove owners", code="role_escalation")
    if ROLE_RANK[current] > ROLE_RANK[ctx.role]:
        raise Forbidden("you cannot manage a member above your role", code="role_escalation")


def require_security_admin(ctx: OrgContext, action: str, minimum: Role = "admin") -> None:
    """Security settings (the sign-in policy, SSO, its domains, webhook destinations) are
    changed by a person with a second factor: never an API key (a leaked key must not turn
    MFA off) nor an impersonation, and never on a password alone (aal1)."""
    if ctx.key_id is not None or ctx.user_id is None:
        raise Forbidden(
            f"{action} needs a person signed in, not an API key",
            code="human_admin_required",
        )
    if ctx.impersonated:
        raise Forbidden(
            f"{action} is not allowed while impersonating", code="impersonation_read_only"
        )
    require(ctx, minimum, action)
    if ctx.aal != "aal2":
        raise Forbidden(
            f"{action} needs a session verified with a second factor (aal2)",
            code="insufficient_aal",
            hint="enrol and verify a factor (POST /auth/v1/factors), then use the new token",
        )
