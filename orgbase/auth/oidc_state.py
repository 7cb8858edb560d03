"""The state of a sign-in with a provider, bound to the browser that started it.

``/authorize`` stores the flow (provider, nonce, PKCE verifier, where to go back) in Redis
under a hash of a random ``state``, and sets a cookie in the browser holding another
random value whose hash is stored with it. ``/callback`` refuses the state unless the
browser sends that cookie (an attacker's unopened callback URL, their own sign-in, cannot
sign a victim's browser in: login CSRF), and only then takes it, once (GETDEL: a replay
finds nothing): a refused request takes nothing.

Flows started by a call that is not a browser navigation (``POST /auth/v1/sso`` and
identity linking, which answer ``{url}``) answer a URL of our own ``/authorize``, so the
state and its cookie are still made in the browser that goes to the provider. Linking
carries a single-use ticket there naming the signed-in account it links to.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.errors import Forbidden, Invalid
from orgbase.core.redis import RedisClients
from orgbase.core.secret_compare import same_secret

STATE_SECONDS = 600
COOKIE_PREFIX = "orgbase_oidc_"
COOKIE_PATH = "/auth/v1/callback"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def state_key(state: str) -> str:
    return keys.oidc_state(_digest(state)[:32])


def _ticket_key(ticket: str) -> str:
    return keys.oidc_state("link-" + _digest(ticket)[:32])


def cookie_name(state: str) -> str:
    """Per flow (two tabs may sign in at once), derived from the state."""
    return COOKIE_PREFIX + _digest("cookie:" + state)[:16]


def _plausible(token: str) -> bool:
    return 20 <= len(token) <= 200 and token.isascii()


@dataclass(frozen=True)
class Started:
    state: str
    binding: str
    """The cookie's value (its hash is stored with the state)."""


@dataclass
class FlowStates:
    redis: RedisClients

    async def begin(self, flow: dict[str, Any]) -> Started:
        state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        stored = json.dumps({**flow, "binding": _digest(binding)})
        key = state_key(state)
        await self.redis.run(lambda r: r.set(key, stored, ex=STATE_SECONDS))
        return Started(state, binding)

    async def _take(self, key: str) -> dict[str, Any] | None:
        async def take(r: Redis) -> Any:
            return await r.getdel(key)

        raw = await self.redis.run(take)
        return None if raw is None else dict(json.loads(raw))

    async def take(self, state: str, binding: str | None) -> dict[str, Any]:
        """The flow of this state, once, for the browser that started it."""
        invalid = Invalid(
            "the sign-in state is unknown, used or expired", code="oidc_state_invalid"
        )
        if not _plausible(state):
            raise invalid
        key = state_key(state)
        # Read, and taken only by its own browser: a request without the cookie (anyone
        # who learned the state) must not use up, so cancel, the user's sign-in.
        raw = await self.redis.run(lambda r: r.get(key))
        if raw is None:
            raise invalid
        if not binding or not same_secret(
            _digest(binding), str(json.loads(raw).get("binding", ""))
        ):
            raise Forbidden(
                "this sign-in was started in another browser",
                code="oidc_browser_mismatch",
                hint="start the sign-in again from this browser",
            )
        stored = await self._take(key)  # once: of two at once, one finds nothing
        if stored is None:
            raise invalid
        stored.pop("binding", None)
        return stored

    async def new_ticket(self, link: dict[str, Any]) -> str:
        """A single-use ticket for ``/authorize`` to start a linking flow with."""
        ticket = secrets.token_urlsafe(32)
        key = _ticket_key(ticket)
        await self.redis.run(lambda r: r.set(key, json.dumps(link), ex=STATE_SECONDS))
        return ticket

    async def take_ticket(self, ticket: str) -> dict[str, Any]:
        stored = await self._take(_ticket_key(ticket)) if _plausible(ticket) else None
        if stored is None:
            raise Invalid("the link ticket is unknown, used or expired", code="oidc_state_invalid")
        return stored
