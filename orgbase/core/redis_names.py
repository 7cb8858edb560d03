"""The Redis keys of per-org limits and usage, in one place.

Every key carries its org as a hash tag (``{<org id>}``), so an org's keys share one
cluster slot and a script may touch several of them.
"""

from __future__ import annotations

from uuid import UUID


def rate_key(org: UUID | str, family: str) -> str:
    """The GCRA state (theoretical arrival time, ms) of an org's API family."""
    return f"rl:{{{org}}}:{family}"


def usage_key(org: UUID | str, hour: int) -> str:
    """A hash of an org's usage counters in one hour (hours since the epoch)."""
    return f"usage:{{{org}}}:{hour}"


def cache_bytes_key(org: UUID | str) -> str:
    """The bytes an org's cache values take."""
    return f"kvbytes:{{{org}}}"


def cache_sizes_key(org: UUID | str) -> str:
    """The size of each of an org's cache values (to subtract when one goes)."""
    return f"kvsizes:{{{org}}}"


def org_patterns(org: UUID | str) -> tuple[str, ...]:
    """Patterns of every key above of one org (the org's deletion sweeps them)."""
    return tuple(f"{prefix}:{{{org}}}*" for prefix in ("rl", "usage", "kvbytes", "kvsizes"))
