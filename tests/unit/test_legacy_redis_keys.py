"""Every Redis name the release before hash tags wrote is recognised and mapped to today's
name; no name of today is taken for an old one (the migration would move or drop it)."""

from __future__ import annotations

import uuid

import pytest

from orgbase.core import keys
from orgbase.services.redis.legacy_keys import OldKey, classify

ORG = str(uuid.uuid4())
USER = str(uuid.uuid4())
ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        (
            f"t:{ORG}:kv:greeting",
            OldKey("cache value", "kv", keys.kv_value(ORG, "greeting"), ORG, "greeting"),
        ),
        (
            f"t:{ORG}:kv:a:b.c-d_e",
            OldKey("cache value", "kv", keys.kv_value(ORG, "a:b.c-d_e"), ORG, "a:b.c-d_e"),
        ),
        (f"t:{ORG}:kvindex", OldKey("cache index", "drop")),
        (f"sess:{USER}", OldKey("session cache", "drop")),
        (f"mem:{ORG}:{USER}", OldKey("membership cache", "drop")),
        (f"hot:{ORG}:29000000", OldKey("hot keys", "drop")),
        ("hot:all:29000000", OldKey("hot keys", "drop")),
        ("hot:tmp:all:123456789", OldKey("hot keys", "drop")),
        (f"gone:{ORG}", OldKey("org deletion marker", "copy", keys.org_gone(ORG))),
        (
            "rl:signin:ip:10.0.0.1:29000000",
            OldKey("rate limit", "copy", keys.rate_limit("signin:ip:10.0.0.1", 29000000)),
        ),
        (
            "rl:signin:ip:::1:29000000",
            OldKey("rate limit", "copy", keys.rate_limit("signin:ip:::1", 29000000)),
        ),
        (f"lock:{ACCOUNT}", OldKey("account lock", "copy", keys.lockout(ACCOUNT)[0])),
        (f"fail:{ACCOUNT}", OldKey("sign-in failures", "copy", keys.lockout(ACCOUNT)[1])),
        (f"slo:m:{ORG}:29000000", OldKey("slo minute", "merge", keys.slo_minute(ORG, 29000000))),
        ("slo:h:all:483000", OldKey("slo hour", "merge", keys.slo_hour("all", 483000))),
        (
            "stats:kv:all:29000000",
            OldKey("cache hit rate", "merge", keys.kv_stats("all", 29000000)),
        ),
    ],
)
def test_old_names_map_to_todays(old: str, expected: OldKey) -> None:
    assert classify(old) == expected


def test_todays_names_are_not_taken_for_old_ones() -> None:
    today = [
        keys.kv_value(ORG, "greeting"),
        keys.kv_index(ORG),
        keys.org_gone(ORG),
        keys.session_key(USER),
        "mem:" + keys.membership_cache_key(ORG, USER),
        "akey:" + "ab" * 32,
        keys.rate_limit("signin:ip:10.0.0.1", 29000000),
        keys.org_rate(ORG, "data"),
        *keys.lockout(ACCOUNT),
        keys.oidc_state("ab" * 16),
        keys.org_usage(ORG, 483000),
        keys.cache_bytes(ORG),
        keys.cache_sizes(ORG),
        keys.slo_minute(ORG, 29000000),
        keys.slo_hour("all", 483000),
        keys.kv_stats(ORG, 29000000),
        keys.hot_keys(ORG, 29000000),
        keys.hot_keys_scratch("all", 12),
        keys.latency_stats(29000000),
        keys.dependency_errors(483000),
        keys.ALERTS,
        keys.DATA_LAYOUT,
        keys.REVOCATIONS_LSN,
        keys.session_commit_lsn(USER),
    ]
    assert [name for name in today if classify(name) is not None] == []


def test_names_that_only_look_old_are_left_alone() -> None:
    for name in (f"t:{ORG}:kv:", f"t:{ORG}:kv:-bad", "t:not-an-org:kv:x", "lock:short", "x"):
        assert classify(name) is None, name
