"""PostgreSQL errors as HTTP statuses: the request's fault is a 4xx, the service's a 5xx."""

from __future__ import annotations

import asyncpg
import pytest

from orgbase.core.errors import OrgbaseError, TimedOut, Unavailable
from orgbase.platform.errors import http_status
from orgbase.platform.errors import status_for_sqlstate as status_for
from orgbase.services.postgres.errors import DatabaseError, translate


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("23505", 409),  # unique_violation: a conflict with a row that exists
        ("23503", 409),  # foreign_key_violation
        ("23502", 400),  # not_null_violation: the rest of class 23 is a bad request
        ("23514", 400),  # check_violation
        ("22P02", 400),  # invalid_text_representation: a value of the wrong type
        ("42501", 403),  # insufficient_privilege: row-level security said no
        ("42P01", 404),  # undefined_table
        ("42703", 400),  # undefined_column: the rest of class 42
        ("42883", 400),  # an operator that does not apply to the column's type
        ("25006", 405),  # read_only_sql_transaction
        ("40001", 409),  # serialization_failure: retry
        ("40P01", 409),  # deadlock_detected: retry
        ("57014", 504),  # query_canceled by the statement timeout
        ("57P01", 503),  # admin_shutdown: the rest of class 57 is unavailability
        ("08006", 503),  # connection_failure
        ("53300", 503),  # too_many_connections
        ("28P01", 403),  # invalid_password
        ("P0001", 400),  # raise_exception from a trigger
        ("54000", 413),  # program_limit_exceeded
        ("XX000", 500),  # internal_error: the server's fault, not the request's
    ],
)
def test_known_states(sqlstate: str, status: int) -> None:
    assert status_for(sqlstate) == status


@pytest.mark.parametrize("sqlstate", ["99999", "ZZ001", "", "0"])
def test_unknown_states_default_to_a_bad_request(sqlstate: str) -> None:
    assert status_for(sqlstate) == 400


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (asyncpg.exceptions.UniqueViolationError("duplicate"), DatabaseError, 409),
        (asyncpg.exceptions.QueryCanceledError("statement timeout"), TimedOut, 504),
        (asyncpg.exceptions.AdminShutdownError("shutting down"), Unavailable, 503),
        (asyncpg.exceptions.TooManyConnectionsError("full"), Unavailable, 503),
    ],
)
def test_translate_tells_the_services_faults_from_the_requests(
    error: asyncpg.PostgresError, kind: type[OrgbaseError], status: int
) -> None:
    translated = translate(error)
    assert type(translated) is kind
    assert translated.code == error.sqlstate
    assert http_status(translated) == status
    if isinstance(translated, Unavailable):
        assert translated.dependency == "postgres"  # counted on the Redis dashboard
