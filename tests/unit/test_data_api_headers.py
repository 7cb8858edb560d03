"""The data API's Prefer and Range headers, read on their own."""

from __future__ import annotations

import pytest

from orgbase.core.errors import Invalid
from orgbase.platform.errors import http_status
from orgbase.services.postgres.errors import RangeNotSatisfiable
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.request import apply_range, parse_prefer


def test_no_prefer_header_means_the_defaults() -> None:
    prefer = parse_prefer([])
    assert (prefer.returning, prefer.count, prefer.resolution, prefer.applied) == (
        "minimal",
        None,
        None,
        (),
    )


def test_prefer_settings_from_one_or_several_headers() -> None:
    prefer = parse_prefer(["return=representation, count=exact", "resolution=merge-duplicates"])
    assert prefer.returning == "representation"
    assert prefer.count == "exact"
    assert prefer.resolution == "merge-duplicates"
    # Preference-Applied echoes exactly what was honoured, in order.
    assert prefer.applied == ("return=representation", "count=exact", "resolution=merge-duplicates")


@pytest.mark.parametrize(
    "header",
    ["return=everything", "count=approximate", "resolution=", "tx=rollback", "handling=x", ""],
)
def test_unknown_or_bad_preferences_are_ignored_not_applied(header: str) -> None:
    prefer = parse_prefer([header])
    assert prefer.applied == ()
    assert (prefer.returning, prefer.count, prefer.resolution) == ("minimal", None, None)


def test_postgrest_preferences_beyond_the_basics() -> None:
    prefer = parse_prefer(
        ["missing=default, handling=strict, max-affected=5, params=single-object"]
    )
    assert (prefer.missing_default, prefer.strict, prefer.max_affected) == (True, True, 5)
    assert prefer.single_object
    assert prefer.applied == (
        "missing=default",
        "handling=strict",
        "max-affected=5",
        "params=single-object",
    )
    # max-affected binds only under handling=strict; tx=rollback only when allowed.
    lenient = parse_prefer(["max-affected=5, tx=rollback"])
    assert (lenient.max_affected, lenient.rollback, lenient.applied) == (None, False, ())
    allowed = parse_prefer(["tx=rollback"], allow_rollback=True)
    assert (allowed.rollback, allowed.applied) == (True, ("tx=rollback",))


@pytest.mark.parametrize(
    "bad", ["count=approximate", "max-affected=-1", "max-affected=\u0661", "x"]
)
def test_strict_handling_refuses_what_it_does_not_understand(bad: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_prefer([f"handling=strict, {bad}"])
    assert refused.value.code == "PGRST122"


def test_the_last_of_repeated_preferences_wins() -> None:
    prefer = parse_prefer(["count=exact,count=planned"])
    assert prefer.count == "planned"


def ranged(header: str | None, limit: int | None = None, offset: int = 0) -> Query:
    query = Query(limit=limit, offset=offset)
    apply_range(query, header)
    return query


@pytest.mark.parametrize(("header", "limit", "offset"), [("items=0-9", 10, 0), ("5-5", 1, 5)])
def test_a_range_sets_limit_and_offset(header: str, limit: int, offset: int) -> None:
    query = ranged(header)
    assert (query.limit, query.offset) == (limit, offset)


def test_an_open_range_only_skips() -> None:
    assert (ranged("items=20-").limit, ranged("items=20-").offset) == (None, 20)


def test_a_range_narrows_a_limit_but_never_widens_it() -> None:
    assert ranged("items=0-99", limit=10).limit == 10
    assert ranged("items=0-4", limit=10).limit == 5


def test_no_range_header_changes_nothing() -> None:
    for header in (None, ""):
        query = ranged(header, limit=3, offset=7)
        assert (query.limit, query.offset) == (3, 7)


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-9",
        "items=9-0",
        "items=-5",
        "items=a-b",
        "items=5",
        "items=1-²",  # a digit to str.isdigit(), not to int()
        "items=0-" + "9" * 13,  # beyond the digits the grammar admits anywhere
        "items=0x1-2",
    ],
)
def test_unsatisfiable_ranges_are_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        ranged(header)
    assert http_status(caught.value) == 416
    assert caught.value.code == "PGRST103"
