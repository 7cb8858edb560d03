"""Redis key names written before the keys carried hash tags, and what each is now.

Until every name carried its owner in braces for Redis Cluster (see orgbase.core.keys),
names were plain: ``t:<org>:kv:<key>``, ``sess:<session>``, ``slo:m:<scope>:<minute>``...
This module reads such a name and says what it held and where that lives now;
orgbase.services.redis.layout does the moving. The patterns are those releases' names,
written out here on purpose: they must not follow later changes of today's names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from orgbase.core import keys

Action = Literal["kv", "copy", "merge", "drop"]
"""kv: a cache value, moved into the org's index and sizes; copy: a string copied with its
TTL unless the new name exists; merge: a hash of counters added to the new one, once;
drop: deleted (a cache of PostgreSQL, rebuilt bookkeeping, or figures of a few minutes)."""


@dataclass(frozen=True)
class OldKey:
    family: str
    """What it holds, as the migration reports it."""
    action: Action
    new: str | None = None
    """Today's name (None when dropped)."""
    org: str | None = None
    key: str | None = None
    """The cache key's name within its org (kv only)."""


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SCOPE = rf"all|{_UUID}"
_KV_KEY = r"[A-Za-z0-9][A-Za-z0-9:._-]{0,255}"
"""The cache's key names of those releases."""

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], OldKey]]


def _rule(pattern: str, make: Callable[[re.Match[str]], OldKey]) -> _Rule:
    return re.compile(pattern), make


def _drop(family: str) -> Callable[[re.Match[str]], OldKey]:
    return lambda _: OldKey(family, "drop")


_RULES: tuple[_Rule, ...] = (
    _rule(
        rf"t:(?P<org>{_UUID}):kv:(?P<key>{_KV_KEY})",
        lambda m: OldKey(
            "cache value", "kv", keys.kv_value(m["org"], m["key"]), m["org"], m["key"]
        ),
    ),
    # Rebuilt from the values it lists, with their sizes (the index had none).
    _rule(rf"t:{_UUID}:kvindex", _drop("cache index")),
    # Caches of PostgreSQL (the source of truth): reloaded on the next miss.
    _rule(rf"sess:{_UUID}", _drop("session cache")),
    _rule(rf"mem:{_UUID}:{_UUID}", _drop("membership cache")),
    # The hot keys of the last five minutes (kept ten), and scratch keys of their reads.
    _rule(rf"hot:(?:tmp:)?(?:{_SCOPE}):\d+", _drop("hot keys")),
    _rule(
        rf"gone:(?P<org>{_UUID})",
        lambda m: OldKey("org deletion marker", "copy", keys.org_gone(m["org"])),
    ),
    _rule(
        r"rl:(?P<bucket>[^{].*):(?P<window>\d+)",
        lambda m: OldKey("rate limit", "copy", keys.rate_limit(m["bucket"], int(m["window"]))),
    ),
    _rule(
        r"lock:(?P<account>[0-9a-f]{32})",
        lambda m: OldKey("account lock", "copy", keys.lockout(m["account"])[0]),
    ),
    _rule(
        r"fail:(?P<account>[0-9a-f]{32})",
        lambda m: OldKey("sign-in failures", "copy", keys.lockout(m["account"])[1]),
    ),
    _rule(
        rf"slo:m:(?P<scope>{_SCOPE}):(?P<n>\d+)",
        lambda m: OldKey("slo minute", "merge", keys.slo_minute(m["scope"], int(m["n"]))),
    ),
    _rule(
        rf"slo:h:(?P<scope>{_SCOPE}):(?P<n>\d+)",
        lambda m: OldKey("slo hour", "merge", keys.slo_hour(m["scope"], int(m["n"]))),
    ),
    _rule(
        rf"stats:kv:(?P<scope>{_SCOPE}):(?P<n>\d+)",
        lambda m: OldKey("cache hit rate", "merge", keys.kv_stats(m["scope"], int(m["n"]))),
    ),
)


def classify(name: str) -> OldKey | None:
    """What an old name held and where it goes; None for a name of today (or unknown)."""
    for pattern, make in _RULES:
        match = pattern.fullmatch(name)
        if match is not None:
            return make(match)
    return None
