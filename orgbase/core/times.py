"""Times a caller gives (query strings, bodies): one parser and one range.

``datetime.fromisoformat`` takes year 1 and year 9999, but a day before the first or a
time zone's offset away from either is past what Python holds (``OverflowError``, a 500),
and PostgreSQL's ``timestamptz`` ends at year 294276. So a time is ISO 8601, naive means
UTC, and it must fall between ``EARLIEST`` and ``LATEST``: a year's margin on each side
keeps every later step (a default span, an offset, ``date_trunc``) inside both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from orgbase.core.errors import Invalid

EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_LENGTH = 40


def _refused(name: str) -> Invalid:
    return Invalid(
        f"{name} is an ISO 8601 time between {EARLIEST.date()} and {LATEST.date()}",
        code="invalid_time",
        hint="e.g. 2026-01-31T12:00:00Z (a time without an offset is UTC)",
    )


def in_range(value: datetime, name: str) -> datetime:
    """``value`` in UTC (naive is UTC), or a 400 ``invalid_time`` outside the range."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise _refused(name) from None
    if not EARLIEST <= utc <= LATEST:
        raise _refused(name)
    return utc


def parse_time(value: str | None, name: str) -> datetime | None:
    """A query parameter's time (None when absent or empty), in UTC."""
    if value is None or value == "":
        return None
    if len(value) > MAX_LENGTH or not value.isascii() or not value.isprintable():
        raise _refused(name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _refused(name) from None
    return in_range(parsed, name)
