"""The one error-mapping module: every domain error kind has its HTTP status there."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import orgbase
from orgbase.core.errors import OrgbaseError, RateLimited, Unauthorized
from orgbase.platform.errors import http_headers, http_status
from orgbase.services.postgres.errors import DatabaseError


def _all_kinds() -> list[type[OrgbaseError]]:
    for module in pkgutil.walk_packages(orgbase.__path__, "orgbase."):
        importlib.import_module(module.name)
    found: list[type[OrgbaseError]] = []
    pending = [OrgbaseError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return [kind for kind in found if kind is not OrgbaseError]


@pytest.mark.parametrize("kind", _all_kinds(), ids=lambda kind: kind.__name__)
def test_every_error_kind_has_a_status(kind: type[OrgbaseError]) -> None:
    """A kind added without a mapping would answer 500: the mapping must name it."""
    if issubclass(kind, RateLimited):
        error: OrgbaseError = kind("x", retry_after=1)
    elif issubclass(kind, DatabaseError):
        error = kind("x", code="23505")
    else:
        error = kind("x")
    assert 400 <= http_status(error) < 600
    assert http_status(error) != 500, f"{kind.__name__} has no status in platform/errors.py"


def test_headers_come_from_the_mapping() -> None:
    assert http_headers(RateLimited("slow", retry_after=0)) == {"Retry-After": "1"}
    assert http_headers(Unauthorized("no", bearer="missing")) == {"WWW-Authenticate": "Bearer"}
    invalid = http_headers(Unauthorized("no", bearer="invalid"))
    assert invalid == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert http_headers(Unauthorized("wrong password")) == {}


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [("23505", 409), ("23502", 400), ("42501", 403), ("42P01", 404), ("22P02", 400)],
)
def test_database_errors_take_their_sqlstates_status(sqlstate: str, status: int) -> None:
    assert http_status(DatabaseError("x", code=sqlstate)) == status
