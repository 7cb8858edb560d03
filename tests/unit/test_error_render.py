"""One rendering for every way an error leaves: the HTTP answer and a socket's close code
come from the catalog (the gateway's tests attack the same through real sockets:
tests/security/test_socket_revocation.py, tests/integration/test_realtime.py)."""

from __future__ import annotations

import msgspec
import pytest

from orgbase.core.error_render import close_of, render, socket_frame, status_of
from orgbase.core.errors import (
    Forbidden,
    Invalid,
    NotFound,
    OrgbaseError,
    RateLimited,
    TimedOut,
    Unauthorized,
    Unavailable,
)
from orgbase.core.pg_errors import DatabaseError


@pytest.mark.parametrize(
    ("error", "close"),
    [
        (Unauthorized("x", code="session_revoked"), 4401),
        (Forbidden("x", code="not_a_member"), 4403),
        # A socket whose org went away is told as a forbidden one is.
        (NotFound("x", code="org_not_found"), 4403),
        (RateLimited("x", code="realtime_connections_exceeded", retry_after=5), 4429),
        (RateLimited("x", code="realtime_too_slow", retry_after=1), 4008),
        (Invalid("x", code="invalid_channel"), 4400),
        # An outage is "try again later", not "forbidden": a client reconnects.
        (Unavailable("x", code="redis_unavailable"), 1013),
        (Unavailable("x", code="database_unavailable"), 1013),
        (OrgbaseError("x"), 1011),
        (TimedOut("x", code="statement_timeout"), 1011),
    ],
    ids=lambda value: getattr(value, "code", str(value)),
)
def test_close_codes_come_from_the_catalog(error: OrgbaseError, close: int) -> None:
    assert close_of(error) == close


def test_the_body_is_the_apis_one_shape() -> None:
    error = RateLimited("slow down", code="org_rate_limited", retry_after=3, details={"a": 1})
    rendered = render(error, "rid-1")
    assert rendered.status == 429
    assert rendered.headers == {"Retry-After": "3"}
    assert msgspec.json.decode(rendered.json()) == {
        "code": "org_rate_limited",
        "message": "slow down",
        "details": {"a": 1},
        "hint": None,
        "request_id": "rid-1",
    }
    assert socket_frame(error) == {
        "type": "error",
        "code": "org_rate_limited",
        "message": "slow down",
    }


def test_a_status_decided_elsewhere_is_kept() -> None:
    """Litestar's own refusals keep the status it chose (a 405 with its Allow header)."""
    assert render(OrgbaseError("x", code="bad_request"), None, 408).status == 408


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DatabaseError("x", code="23505"), 409),
        (Invalid("x", code="42703"), 400),  # a SQLSTATE-shaped code raised from Python
        (TimedOut("x", code="57014"), 504),
        (Unavailable("x", code="08006"), 503),
        # A code missing from the catalog still answers its kind's status (and the
        # catalog's test fails for it).
        (Forbidden("x", code="not_in_the_catalog"), 403),
    ],
)
def test_statuses_of_codes_outside_the_named_ones(error: OrgbaseError, status: int) -> None:
    assert status_of(error) == status
