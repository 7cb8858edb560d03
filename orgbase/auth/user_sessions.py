"""A user's own sessions: logout (this one, the others, or all) and ending one by id."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orgbase.auth.schemas import Logout, RequestMeta, Session
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal
from orgbase.core.errors import NotFound
from orgbase.core.postgres import Database


@dataclass
class UserSessions:
    db: Database
    sessions: SessionStore

    async def logout(self, principal: Principal, body: Logout, meta: RequestMeta) -> None:
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            if body.scope == "local":
                revoked = await self.sessions.revoke(connection, [session_id], "logout")
            else:
                keep = session_id if body.scope == "others" else None
                revoked = await self.sessions.revoke_for_user(
                    connection, user_id, f"logout_{body.scope}", keep
                )
            details = {"scope": body.scope, "sessions": len(revoked)}
            await audit.record(
                connection, AuditEvent.by_user(user_id, meta, "auth.logout", details=details)
            )
        await self.sessions.forget(revoked)

    async def list_sessions(self, principal: Principal) -> list[Session]:
        user_id, current = principal.require_user()
        rows = await self.sessions.list_for_user(user_id)
        return [Session(**row, current=row["id"] == current) for row in rows]

    async def revoke_session(
        self, principal: Principal, session_id: UUID, meta: RequestMeta
    ) -> None:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            owner = await connection.fetchval(
                "SELECT user_id FROM orgbase.sessions WHERE id = $1 AND revoked_at IS NULL",
                session_id,
            )
            if owner != user_id:
                raise NotFound("no such session", code="session_not_found")
            await self.sessions.revoke(connection, [session_id], "revoked_by_user")
            details = {"session_id": str(session_id)}
            event = AuditEvent.by_user(user_id, meta, "auth.session_revoked", details=details)
            await audit.record(connection, event)
        await self.sessions.forget([session_id])
