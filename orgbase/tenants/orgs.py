"""Orgs: creating, listing, renaming and deleting them (members: ``members.py``).

Deleting an org ends everything scoped to it, then removes it everywhere: the org is
closed (under its advisory lock, so writes in flight finish first and later ones find it
gone) together with its API keys, impersonations, pending invitations, unsent mail and
webhook endpoints, and the sessions' choice of it as their active org; caches are
tombstoned and open sockets closed on every replica; then its rows, documents, cache keys
and audit trail are purged and the org row deleted (one ``org.deleted`` record stays).
Stores outside PostgreSQL are swept once more after a grace period, for writes that were
in flight. A purge a backing service interrupted (MongoDB or Redis down) is retried in the
background until it goes through: the deletion itself stands (204). A deletion cut short
(a crash) is finished by the next gateway to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from orgbase.core import audit, rbac
from orgbase.core.accounts import Accounts
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, Principal, RequestMeta
from orgbase.core.errors import Invalid, Unauthorized, Unavailable
from orgbase.core.events import (
    EventBus,
    OrgClosing,
    OrgDeleted,
    OrgPurging,
    OrgSweeping,
    after_commit,
)
from orgbase.core.periodic import Periodic
from orgbase.core.pg_errors import org_not_found
from orgbase.core.postgres import (
    CONNECTION_ERRORS,
    ORG_LOCK,
    AnyConnection,
    Database,
)
from orgbase.core.tasks import TaskSet
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.schemas import Org

log = structlog.get_logger("orgbase.orgs")

SWEEP_AFTER_SECONDS = 10.0
"""Stores outside PostgreSQL are swept again this long after a deletion (and a purge a
backing service interrupted is tried again this often)."""
STORE_DOWN: tuple[type[BaseException], ...] = (Unavailable, *CONNECTION_ERRORS)
RESUME_AFTER_SECONDS = 60
"""A deletion closed this long ago and not finished was cut short: finish it."""

_ORG_FOR_MEMBER = """
SELECT o.id, o.name, o.created_at, o.updated_at, m.role
FROM orgbase.orgs o JOIN orgbase.memberships m ON m.org_id = o.id
WHERE m.user_id = $1 AND o.deleted_at IS NULL
"""


async def found_org(connection: AnyConnection, name: str, owner: UUID) -> dict[str, Any]:
    """A new org with its owner and its first settings (in the caller's transaction)."""
    org = await connection.fetchrow(
        "INSERT INTO orgbase.orgs (name, created_by) VALUES ($1, $2)"
        " RETURNING id, name, created_at, updated_at",
        name,
        owner,
    )
    assert org is not None
    await connection.execute(
        "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')",
        org["id"],
        owner,
    )
    await connection.execute(
        """
        WITH doc AS (
            INSERT INTO orgbase.org_settings (org_id, updated_by) VALUES ($1, $2)
            RETURNING org_id, version, settings, updated_at, updated_by)
        INSERT INTO orgbase.org_settings_history
        SELECT org_id, version, settings, updated_at, updated_by FROM doc
        """,
        org["id"],
        owner,
    )
    return dict(org)


async def first_owned_org(connection: AnyConnection, owner: UUID) -> UUID | None:
    """The oldest org this user owns."""
    found: UUID | None = await connection.fetchval(
        "SELECT org_id FROM orgbase.memberships WHERE user_id = $1 AND role = 'owner'"
        " ORDER BY created_at LIMIT 1",
        owner,
    )
    return found


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Invalid("the org needs a name", code="invalid_name")
    return cleaned


@dataclass(eq=False)
class OrgService:
    db: Database
    memberships: MembershipCache
    accounts: Accounts
    events: EventBus
    """Other areas' parts of a deletion: ``OrgClosing`` (in the closing transaction: API
    keys, sessions, webhook endpoints), ``OrgDeleted`` (sockets close, in-flight cache
    writes are refused), ``OrgPurging`` (rows in PostgreSQL, while the closed org row
    still exists) and ``OrgSweeping`` (documents, cache, files: told again after a
    grace). Subscribers must succeed: a purge that failed is retried."""
    tasks: TaskSet

    # -- orgs ---------------------------------------------------------------------------

    async def create(self, principal: Principal, name: str, meta: RequestMeta) -> Org:
        """The new org is the one the caller's session enters at its next refresh (how a
        client that only refreshes, as Supabase's do, moves into it)."""
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            # Held: the account's deletion waits for this org, then ends its membership.
            if await self.accounts.hold(connection, user_id) is None:
                raise Unauthorized("the account no longer exists", code="session_revoked")
            org = await found_org(connection, _clean_name(name), user_id)
            if principal.impersonation_id is None:  # an impersonation chooses nothing
                await self.accounts.enter_next(connection, user_id, session_id, org["id"])
            ctx = OrgContext(
                org_id=org["id"], user_id=user_id, role="owner", request_id=meta.request_id
            )
            await audit.record(
                connection,
                AuditEvent.in_org(ctx, meta, "org.created", details={"name": org["name"]}),
            )
        await self.memberships.changed(org["id"], user_id, "owner")
        return Org(**org, role="owner")

    async def list_mine(self, principal: Principal) -> list[Org]:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_ORG_FOR_MEMBER + " ORDER BY o.created_at", user_id)
        return [Org(**dict(r)) for r in rows]

    async def get(self, ctx: OrgContext) -> Org:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                "SELECT id, name, created_at, updated_at FROM orgbase.orgs"
                " WHERE id = $1 AND deleted_at IS NULL",
                ctx.org_id,
            )
        if row is None:
            raise org_not_found()
        return Org(**dict(row), role=ctx.role)

    async def rename(self, ctx: OrgContext, name: str, meta: RequestMeta) -> Org:
        rbac.require(ctx, "admin", "renaming the org")
        async with self.db.system_connection() as connection, connection.transaction():
            row = await connection.fetchrow(
                "UPDATE orgbase.orgs SET name = $2, updated_at = now()"
                " WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, created_at, updated_at,"
                " (SELECT name FROM orgbase.orgs WHERE id = $1) AS old_name",
                ctx.org_id,
                _clean_name(name),
            )
            if row is None:
                raise org_not_found()
            await audit.record(
                connection,
                AuditEvent.in_org(
                    ctx, meta, "org.renamed", details={"from": row["old_name"], "to": row["name"]}
                ),
            )
        return Org(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            role=ctx.role,
        )

    async def delete(self, ctx: OrgContext, meta: RequestMeta) -> None:
        rbac.require(ctx, "owner", "deleting the org")
        closed = await self._close(ctx.org_id)
        if closed is None:
            raise org_not_found()
        record = AuditEvent.in_org(ctx, meta, "org.deleted", details=closed)
        try:
            await self._purge(ctx.org_id, record)
        except STORE_DOWN as exc:
            # The org is closed and every credential of it ended: what is left is out of
            # anyone's reach, so the deletion stands and the purge is finished later.
            log.warning("purging a deleted org failed", org_id=str(ctx.org_id), error=repr(exc))
            self._purge_until_done(ctx.org_id, record)
            return
        self._sweep_later(ctx.org_id)

    async def _close(self, org_id: UUID) -> dict[str, int] | None:
        """Close the org and end every credential scoped to it; None when it is gone."""
        async with self.db.system_connection() as connection, connection.transaction():
            # Waits for every transaction inside the org; later ones find it closed.
            await connection.execute(ORG_LOCK, org_id)
            closed = await connection.execute(
                "UPDATE orgbase.orgs SET deleted_at = now(), updated_at = now()"
                " WHERE id = $1 AND deleted_at IS NULL",
                org_id,
            )
            if closed == "UPDATE 0":
                return None
            members = [
                r["user_id"]
                for r in await connection.fetch(
                    "SELECT user_id FROM orgbase.memberships WHERE org_id = $1", org_id
                )
            ]
            await connection.execute(
                "UPDATE orgbase.impersonations SET ended_at = now()"
                " WHERE org_id = $1 AND ended_at IS NULL",
                org_id,
            )
            await connection.execute(
                "UPDATE orgbase.invitations SET revoked_at = now()"
                " WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
                org_id,
            )
            await connection.execute(
                "DELETE FROM orgbase.outbox WHERE org_id = $1 AND sent_at IS NULL", org_id
            )
            after = await self.events.publish_in_transaction(OrgClosing(org_id=org_id), connection)
        await self.memberships.removed_all(org_id, members)
        await after_commit(after)
        await self.events.publish(OrgDeleted(org_id=org_id), must_succeed=True)
        return {"members": len(members)}

    async def _purge(self, org_id: UUID, record: AuditEvent) -> None:
        """Delete what a closed org left: rows, documents, cache, its audit trail, the org."""
        await self.events.publish(OrgPurging(org_id=org_id), must_succeed=True)
        await self.events.publish(OrgSweeping(org_id=org_id), must_succeed=True)
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.fetchval("SELECT orgbase.purge_org_audit($1)", org_id)
            await connection.execute("DELETE FROM orgbase.orgs WHERE id = $1", org_id)
            await audit.record(connection, record)

    def _purge_until_done(self, org_id: UUID, record: AuditEvent) -> None:
        """Retry a purge a backing service interrupted, every SWEEP_AFTER_SECONDS until it
        went through (cut short by a stop: the next start resumes it)."""

        async def purge() -> None:
            await self._purge(org_id, record)
            log.info("finished purging a deleted org", org_id=str(org_id))

        name = f"purging deleted org {org_id}"
        retry = Periodic.retry_until_done(name, purge, SWEEP_AFTER_SECONDS, at_once=False)
        self.tasks.spawn_loop(retry)

    def _sweep_later(self, org_id: UUID) -> None:
        """Sweep the stores outside PostgreSQL once more after a grace, for writes that
        were in flight. Each store is swept even when another fails (the bus logs the
        failure): the data is unreachable now, the log is for the operator."""

        async def sweep() -> None:
            await self.events.publish(OrgSweeping(org_id=org_id))

        name = f"sweeping deleted org {org_id}"
        self.tasks.spawn_loop(Periodic(name, sweep, SWEEP_AFTER_SECONDS, until_success=True))

    async def resume_deletions(self) -> int:
        """Finish deletions cut short (closed a while ago, row still there)."""
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                "SELECT id FROM orgbase.orgs WHERE deleted_at < now() - make_interval(secs => $1)",
                float(RESUME_AFTER_SECONDS),
            )
        for row in rows:
            org_id = row["id"]
            event = AuditEvent.by_system("org.deleted", org_id=org_id, details={"resumed": True})
            await self._purge(org_id, event)
            log.info("finished an org deletion cut short", org_id=str(org_id))
        return len(rows)

    def start(self) -> None:
        self.tasks.spawn(self._resume_quietly(), "finishing org deletions cut short")

    async def _resume_quietly(self) -> None:
        try:
            await self.resume_deletions()
        except Exception as exc:  # tried again at the next start
            log.warning("finishing org deletions failed", error=repr(exc))
