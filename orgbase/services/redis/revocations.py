"""Revocations at the open sockets and event streams of this process.

A notice (``core.context.Revocation``) arrives once per replica through Redis, or at once
here when this process announced it. Applied to every local subscriber: an ended session,
key, membership or org closes its sockets; a changed role downgrades them; a tightened
sign-in policy of an org (a second factor or its SSO now required) puts the org's
sessions' sockets on hold and checks each again at once, closing those now short of it.
Listeners (``heard``) hear every notice before the sockets do: caches that must not
outlive it (an org's sign-in policy) are dropped first, so the checks read the new one.

Every socket is also checked again periodically, which covers a notice lost while Redis
was down (and releases a hold whose check failed for a backing service's outage).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import structlog

from orgbase.core.context import Revocation
from orgbase.core.errors import Forbidden, NotFound, OrgbaseError, Unauthorized
from orgbase.core.periodic import Periodic
from orgbase.services.redis.subscriber import Subscriber

log = structlog.get_logger("orgbase.realtime")

_decode = msgspec.json.Decoder(Revocation).decode


class SocketRevocations:
    def __init__(self, subscribers: set[Subscriber], recheck_seconds: float) -> None:
        self._subscribers = subscribers
        self.heard: list[Callable[[Revocation], None]] = []
        """Told about every notice first (wired by the platform: policy caches)."""
        self._checks: set[asyncio.Task[None]] = set()
        self._rechecker = Periodic("realtime re-check", self._recheck_all, recheck_seconds)

    def start(self) -> None:
        self._rechecker.start()

    async def stop(self) -> None:
        await self._rechecker.stop()
        for task in list(self._checks):
            task.cancel()

    def received(self, body: bytes) -> None:
        """A notice published by some replica (this one included)."""
        try:
            notice = _decode(body)
        except msgspec.DecodeError:
            return
        self.apply(notice)

    def apply(self, notice: Revocation) -> None:
        for listener in self.heard:
            listener(notice)
        for subscriber in tuple(self._subscribers):
            ended = subscriber.revoked_by(notice)
            if ended is not None:
                subscriber.end(ended)
            elif subscriber.in_doubt_after(notice):
                self._check_now(subscriber)
            elif (
                notice.role is not None
                and notice.org == subscriber.ctx.org_id
                and notice.user == subscriber.ctx.user_id
            ):
                # A changed role: the socket keeps reading, with the new role's rights.
                subscriber.identity.ctx = subscriber.ctx.with_role(notice.role)

    def _check_now(self, subscriber: Subscriber) -> None:
        """Nothing more is sent to ``subscriber`` until a check of it passes."""
        subscriber.hold()
        task = asyncio.get_running_loop().create_task(self.recheck(subscriber))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _recheck_all(self) -> None:
        for subscriber in tuple(self._subscribers):
            await self.recheck(subscriber)

    @staticmethod
    async def recheck(subscriber: Subscriber) -> None:
        """Ask the identity again: closed when it no longer works, else updated (and
        released from a hold)."""
        try:
            await subscriber.identity.refresh()
        except OrgbaseError as exc:
            if isinstance(exc, (Unauthorized, Forbidden, NotFound)):
                subscriber.end(exc)
            else:  # a failing check (a service down) keeps the socket; the next decides
                log.debug("realtime re-check failed", code=exc.code)
            return
        except Exception as exc:  # the same: never close a socket on our own error
            log.debug("realtime re-check failed", error=repr(exc))
            return
        subscriber.release()
