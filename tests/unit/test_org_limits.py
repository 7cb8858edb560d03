"""Per-org limits without services: the flat object's validation, the API families of
paths, the RateLimit fields, and the usage meter's take / give back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orgbase.core.errors import Invalid
from orgbase.core.metering import Meter
from orgbase.core.settings import LimitsSettings
from orgbase.limits.admission import family_of
from orgbase.limits.org_rate import Decision, burst_of
from orgbase.limits.overrides import MAXIMUMS, defaults, validate_overrides, with_overrides


def test_overrides_replace_only_what_they_name() -> None:
    base = defaults(LimitsSettings())
    changed = with_overrides(base, {"kv_requests_per_minute": 5, "gone_limit": 9})
    assert changed.kv_requests_per_minute == 5
    assert changed.data_requests_per_minute == base.data_requests_per_minute
    assert with_overrides(base, {}) is base


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"nope": 1}, "unknown_limit"),
        ({"rows_per_response": 0}, "invalid_limit"),
        ({"rows_per_response": -5}, "invalid_limit"),
        ({"rows_per_response": MAXIMUMS["rows_per_response"] + 1}, "invalid_limit"),
        ({"rows_per_response": 2.0}, "invalid_limit"),
        ({"rows_per_response": False}, "invalid_limit"),
        ({"rows_per_response": "3"}, "invalid_limit"),
        ([], "invalid_limits"),
        (None, "invalid_limits"),
    ],
)
def test_nonsense_is_refused_with_a_code(body: Any, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_overrides(body)
    assert refused.value.code == code


def test_null_means_back_to_the_default() -> None:
    assert validate_overrides({"rows_per_response": None, "kv_requests_per_minute": 7}) == {
        "rows_per_response": None,
        "kv_requests_per_minute": 7,
    }


@pytest.mark.parametrize(
    ("method", "path", "family"),
    [
        ("GET", "/v1/db/items", "data"),
        ("POST", "/rest/v1/items", "data"),
        ("GET", "/v1/db", "data"),
        ("DELETE", "/v1/docs/notes/1", "docs"),
        ("PUT", "/v1/kv/a", "kv"),
        ("POST", "/v1/realtime/room", "realtime"),
        ("GET", "/v1/realtime/sse", None),
        ("GET", "/v1/orgs", None),
        ("GET", "/v1/kvx", None),
    ],
)
def test_families_of_paths(method: str, path: str, family: str | None) -> None:
    assert family_of(method, path) == family


def test_ratelimit_fields_follow_the_draft() -> None:
    decision = Decision("data", 600, 42, 7)
    assert dict(decision.headers()) == {
        b"ratelimit-policy": b'"data";q=100;w=10',
        b"ratelimit": b'"data";r=42;t=7',
    }
    assert decision.refusal() is None
    refused = Decision("kv", 6, 0, 10, retry_after=10).refusal()
    assert refused is not None
    assert (refused.code, refused.retry_after) == ("org_rate_limited", 10)
    assert (burst_of(1), burst_of(6), burst_of(7), burst_of(600)) == (1, 1, 2, 100)


def test_meter_gives_back_what_a_failed_flush_took() -> None:
    meter = Meter()
    org = uuid.uuid4()
    meter.add(org, "requests_data", 3)
    meter.level(org, "cache_bytes", 100)
    counts, levels = meter.take()
    assert meter.pending == 0
    meter.add(org, "requests_data", 2)
    meter.level(org, "cache_bytes", 150)
    meter.give_back(counts, levels)
    counts, levels = meter.take()
    [(key, figures)] = counts.items()
    assert key[0] == org
    assert figures == {"requests_data": 5}
    # The newer level wins over the one given back.
    assert next(iter(levels.values())) == {"cache_bytes": 150}
    meter.add(org, "rows_read", 1)
    meter.forget(org)
    assert meter.pending == 0
