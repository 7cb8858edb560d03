"""One open WebSocket or event stream: its identity, its channels and its queue.

Messages wait in the queue until the connection sends them. A subscriber can be put on
hold (a tightened sign-in policy of its org puts it in doubt): its messages keep queueing
but none is sent until a check of its identity passes (or the check closes it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

from orgbase.core.context import LiveIdentity, OrgContext, Revocation
from orgbase.core.error_render import close_of
from orgbase.core.errors import Forbidden, NotFound, OrgbaseError, RateLimited, Unauthorized

MESSAGE_PREFIX = b'{"type":"message"'
"""How every channel message the hub carries begins (msgspec keeps the keys' order)."""


def _cleared() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclass(eq=False)
class Subscriber:
    identity: LiveIdentity
    queue_size: int
    channels: set[str] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000
    close_reason: str = ""
    ended: OrgbaseError | None = None
    """The error that ended the subscriber (None for a plain close: left, shutdown)."""
    expiry: asyncio.TimerHandle | None = None
    counted_org: UUID | None = None
    """The org whose realtime_connections this subscriber counts against."""
    cleared: asyncio.Event = field(default_factory=_cleared)
    """Clear while the subscriber is on hold (its identity in doubt): nothing is sent."""

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(self.queue_size)

    @property
    def ctx(self) -> OrgContext:
        return self.identity.ctx

    def deliver(self, message: bytes) -> None:
        """Queue a hub message for the connection. Plain sockets and event streams take
        channel messages only (``{"type":"message"...}``); what the Phoenix protocol adds to
        a channel (presence) is for its own sockets, which translate messages themselves."""
        if not message.startswith(MESSAGE_PREFIX):
            return
        self.enqueue(message)

    def enqueue(self, message: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            too_slow = "too slow: messages were piling up"
            self.end(RateLimited(too_slow, code="realtime_too_slow", retry_after=1))

    async def next_message(self) -> bytes:
        """The next message to send, once the subscriber is not on hold."""
        await self.cleared.wait()
        message = await self.queue.get()
        await self.cleared.wait()  # a hold may have begun while it waited
        return message

    def hold(self) -> None:
        self.cleared.clear()

    def release(self) -> None:
        self.cleared.set()

    def close(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()

    def end(self, error: OrgbaseError) -> None:
        """Close for ``error``: the catalog's close code, its message as the reason."""
        if not self.closed.is_set():
            self.ended = error
            self.close(close_of(error), error.message)

    def revoked_by(self, notice: Revocation) -> OrgbaseError | None:
        """The error that ends this subscriber when ``notice`` ends its rights."""
        principal, ctx = self.identity.principal, self.ctx
        if principal.session_id is not None and principal.session_id in notice.sessions:
            return Unauthorized("the session has ended", code="session_revoked")
        if principal.key_id is not None and principal.key_id in notice.keys:
            return Unauthorized("the API key was revoked", code="api_key_invalid")
        if notice.org != ctx.org_id:
            return None
        if notice.org_deleted:
            return NotFound("the org was deleted", code="org_not_found")
        if notice.user is not None and notice.user == ctx.user_id and notice.role is None:
            return Forbidden("the membership has ended", code="not_a_member")
        return None

    def in_doubt_after(self, notice: Revocation) -> bool:
        """Does ``notice`` (a tightened sign-in policy of its org) put this subscriber's
        rights in doubt? API keys are outside sign-in policies; a token that proves aal2
        meets a second-factor requirement (an impersonation's level is its admin's
        session's, which only PostgreSQL knows)."""
        ctx = self.ctx
        if notice.policy in (None, "relaxed") or notice.org != ctx.org_id:
            return False
        if self.identity.principal.kind != "user":
            return False
        return not (notice.policy == "mfa_required" and ctx.aal == "aal2" and not ctx.impersonated)
