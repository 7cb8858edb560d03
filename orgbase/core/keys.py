"""Every Redis key and channel name orgbase writes, in one place.

On a Redis Cluster a key's slot is the hash of its *hash tag* (the part between the first
``{`` and the next ``}``), so every name carries its owner (org, user, session, account)
in braces: all keys of one owner land in one slot, and a Lua script or MULTI over them
never fails with CROSSSLOT. The convention is ``<area>:{<owner>}:<rest>``; org data
lives under ``t:{<org>}:`` (so one SCAN pattern finds all of it when the org is
deleted). Names without an owner (platform figures, the alert list, the revocation
channel) are used one key per command and need no tag.

To add a key: add a function here, tagged by its owner, and use it at the call site.
"""

from __future__ import annotations

from uuid import UUID

Owner = UUID | str


def tag(owner: Owner) -> str:
    """The hash tag of ``owner``: keys with the same tag share a cluster slot."""
    return "{" + str(owner) + "}"


# -- org data (t:{org}:...) ------------------------------------------------------------


def org_prefix(org: Owner) -> str:
    return f"t:{tag(org)}:"


def org_pattern(org: Owner) -> str:
    """SCAN pattern of every ``t:{org}:`` key (braces are not special in Redis globs)."""
    return org_prefix(org) + "*"


def kv_value(org: Owner, key: str) -> str:
    return f"{org_prefix(org)}kv:{key}"


def kv_index(org: Owner) -> str:
    return f"{org_prefix(org)}kvindex"


def org_gone(org: Owner) -> str:
    """Set while an org is being deleted; outside ``t:{org}:*`` so the purge keeps it,
    in the same slot so the cache scripts can read it with the org's keys."""
    return f"gone:{tag(org)}"


def realtime_channel(org: Owner, name: str) -> str:
    """A realtime channel (sharded pub/sub on a cluster: the org's slot picks the shard)."""
    return f"{org_prefix(org)}rt:{name}"


def realtime_presence(org: Owner, name: str) -> str:
    """Who is present on a realtime channel (a hash: presence ref -> key, meta, until)."""
    return f"{org_prefix(org)}rtp:{name}"


REVOCATIONS_CHANNEL = "sys:revocations"


# -- caches of revocable facts (the cache appends the owner's key to the prefix) ---------

SESSION_CACHE_PREFIX = "sess:"
MEMBERSHIP_CACHE_PREFIX = "mem:"
API_KEY_CACHE_PREFIX = "akey:"  # one key per command (GET/SET): a hash, no owner to tag


def session_cache_key(session_id: Owner) -> str:
    """The part after ``sess:``."""
    return tag(session_id)


def session_key(session_id: Owner) -> str:
    return SESSION_CACHE_PREFIX + session_cache_key(session_id)


def membership_cache_key(org: Owner, user: Owner) -> str:
    """The part after ``mem:``: tagged by the org (an org's memberships share a slot)."""
    return f"{tag(org)}:{user}"


# -- rate limits and lockouts ----------------------------------------------------------


def rate_limit(bucket: str, window: int) -> str:
    return f"rl:{tag(bucket)}:{window}"


def oidc_state(state_digest: str) -> str:
    """A pending OpenID sign-in (single use): tagged by the attempt itself."""
    return f"oidc:state:{tag(state_digest)}"


def lockout(account: str) -> tuple[str, str]:
    """(lock, failure count) of an account: one Lua script reads both, so one slot."""
    return f"auth:{tag(account)}:lock", f"auth:{tag(account)}:fail"


# -- per-org limits and usage (the org's slot: a script may touch several) --------------


def org_rate(org: Owner, family: str) -> str:
    """The GCRA state (theoretical arrival time, ms) of an org's API family."""
    return f"rl:{tag(org)}:{family}"


def org_usage(org: Owner, hour: int) -> str:
    """A hash of an org's usage counters in one hour (hours since the epoch)."""
    return f"usage:{tag(org)}:{hour}"


def cache_bytes(org: Owner) -> str:
    """The bytes an org's cache values take."""
    return f"kvbytes:{tag(org)}"


def cache_sizes(org: Owner) -> str:
    """The size of each of an org's cache values (to subtract when one goes)."""
    return f"kvsizes:{tag(org)}"


def org_limit_patterns(org: Owner) -> tuple[str, ...]:
    """SCAN patterns of the four kinds above for one org (its deletion sweeps them)."""
    return tuple(f"{prefix}:{tag(org)}*" for prefix in ("rl", "usage", "kvbytes", "kvsizes"))


# -- figures (SLO counters, dashboard) -------------------------------------------------
# ``scope`` is an org id or "all". A scope's minutes share a slot (ZUNIONSTORE over the
# hot-key minutes needs that).


def slo_minute(scope: str, minute: int) -> str:
    return f"slo:{tag(scope)}:m:{minute}"


def slo_hour(scope: str, hour: int) -> str:
    return f"slo:{tag(scope)}:h:{hour}"


def slo_pattern(scope: str) -> str:
    return f"slo:{tag(scope)}:*"


def kv_stats(scope: str, minute: int) -> str:
    return f"stats:kv:{tag(scope)}:{minute}"


def kv_stats_pattern(scope: str) -> str:
    return f"stats:kv:{tag(scope)}:*"


def hot_keys(scope: str, minute: int) -> str:
    return f"hot:{tag(scope)}:{minute}"


def hot_keys_scratch(scope: str, unique: int) -> str:
    return f"hot:{tag(scope)}:tmp:{unique}"


def hot_keys_pattern(scope: str) -> str:
    return f"hot:{tag(scope)}:*"


def latency_stats(minute: int) -> str:
    return f"stats:lat:{minute}"


def dependency_errors(hour: int) -> str:
    return f"deperr:{hour}"


ALERTS = "sys:alerts"

DATA_LAYOUT = "sys:layout"
"""The data steps of ``orgbase migrate`` this Redis has been through (a hash: step ->
when it finished). Kept in Redis, not PostgreSQL: it must travel with the keys it
describes (a Redis restored from an older backup has old keys and no record)."""


# -- read-your-writes (PostgreSQL replicas) --------------------------------------------


REVOCATIONS_LSN = "lsn:{revocations}"
"""The WAL position after the newest revocation (session, key, membership, role, org):
no replica behind it serves a read, so a revocation acts on the next request there too."""


def session_commit_lsn(session: Owner) -> str:
    """The newest commit LSN written by a session: its reads wait for a replica past it."""
    return f"lsn:{tag(session)}"
