"""Every PostgreSQL failure becomes an API error here, and nowhere else.

Three cases. A failed entry into an org (``orgbase.enter_*`` raising our own OBxxx
SQLSTATEs) is the caller's credential or the org's sign-in policy: ``entry_error``. A
platform statement (auth, tenants) that fails on a value or a lost connection:
``refused_value``, ``database_failure``. A data API statement keeps its SQLSTATE as the
code, as PostgREST does: ``translate``; ``status_for_sqlstate`` gives such a code its HTTP
status (the error catalog asks it for every SQLSTATE-shaped code).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import asyncpg

from orgbase.core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    OrgbaseError,
    TimedOut,
    Unauthorized,
    Unavailable,
)


class DatabaseError(OrgbaseError):
    """A statement failed for a reason of the request (constraint, type, permission...);
    ``code`` is its SQLSTATE."""

    @property
    def sqlstate(self) -> str:
        return self.code


# -- SQLSTATE -> HTTP status, as PostgREST answers them ------------------------------------
#
# Exact codes first, then the SQLSTATE's class, else 400. (The data API reports service
# faults, classes 08/53/57, as Unavailable or TimedOut; the table stays whole to answer any
# SQLSTATE.)
STATUS_BY_SQLSTATE = {
    "23503": 409,  # foreign_key_violation
    "23505": 409,  # unique_violation
    "25006": 405,  # read_only_sql_transaction
    # undefined_function: here always an operator that does not apply to the column's
    # type (cs on text...), a fault of the request (PostgREST's 404 is for RPC).
    "42883": 400,
    "42P01": 404,  # undefined_table
    "42501": 403,  # insufficient_privilege (row-level security)
    "40001": 409,  # serialization_failure
    "40P01": 409,  # deadlock_detected
    "57014": 504,  # query_canceled (statement timeout)
    "P0001": 400,  # raise_exception
    "54000": 413,  # program_limit_exceeded
    "54001": 413,  # statement_too_complex
}
STATUS_BY_SQLSTATE_CLASS = {
    "08": 503,
    "53": 503,
    "57": 503,
    "28": 403,
    "0L": 403,
    "0P": 403,
    "22": 400,
    "23": 400,
    "42": 400,
    "XX": 500,  # internal_error, data_corrupted: the server's fault, as PostgREST says
}
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


def is_sqlstate(code: str) -> bool:
    """Five digits or capitals: a SQLSTATE (the catalog's own codes are lower case)."""
    return _SQLSTATE.fullmatch(code) is not None


def status_for_sqlstate(sqlstate: str) -> int:
    if sqlstate in STATUS_BY_SQLSTATE:
        return STATUS_BY_SQLSTATE[sqlstate]
    return STATUS_BY_SQLSTATE_CLASS.get(sqlstate[:2], 400)


# -- the data API's statements -------------------------------------------------------------

# SQLSTATE classes that are the server's condition, not the request's: connection
# exception, insufficient resources, operator intervention.
_SERVICE_FAULT_CLASSES = frozenset({"08", "53", "57"})
_QUERY_CANCELED = "57014"  # statement_timeout fired


def translate(error: asyncpg.PostgresError) -> OrgbaseError:
    """A data API statement's failure: an entry's error, else the SQLSTATE as the code."""
    entering = entry_error(error)
    if entering is not None:
        return entering
    sqlstate = error.sqlstate or "XX000"
    message = str(error.args[0] if error.args else error)
    detail = getattr(error, "detail", None)
    hint = getattr(error, "hint", None)
    if sqlstate == _QUERY_CANCELED:
        return TimedOut(message, code=sqlstate, details=detail, hint=hint)
    if sqlstate[:2] in _SERVICE_FAULT_CLASSES:
        return Unavailable(message, code=sqlstate, details=detail, hint=hint, dependency="postgres")
    return DatabaseError(message, code=sqlstate, details=detail, hint=hint)


# -- platform statements -------------------------------------------------------------------


def database_unavailable(message: str = "the database is unavailable") -> Unavailable:
    return Unavailable(message, code="database_unavailable", dependency="postgres")


def database_failure(exc: BaseException) -> Unavailable | Invalid:
    """asyncpg's InterfaceError covers both a lost connection and a value it cannot send
    (a ValueError, e.g. a string with a lone surrogate): only the first is an outage."""
    if isinstance(exc, ValueError):
        return Invalid(f"a value cannot be sent to the database: {exc}"[:300], code="invalid_value")
    return database_unavailable()


# What a refused value was, by SQLSTATE, in our words: PostgreSQL's own (its message, its
# DETAIL) describe the database, not the request, and are not the client's to read.
_REFUSED_VALUES = {
    "22021": "text cannot hold a NUL character or an invalid byte sequence",
    "22P05": "text cannot hold a NUL character (\\u0000)",
    "22003": "a number is out of range",
    "22008": "a date or time is out of range",
}


def refused_value(exc: asyncpg.PostgresError) -> Invalid:
    """Class 22: a value PostgreSQL cannot take (a NUL character in text, an escape jsonb
    refuses, a number out of range) is the request's fault, not an outage. (The data API
    translates these itself, into PostgREST's codes.)"""
    what = _REFUSED_VALUES.get(str(getattr(exc, "sqlstate", "")), "a value of an unusable form")
    return Invalid(f"a value cannot be stored or compared: {what}", code="invalid_value")


def statement_timed_out(seconds: float) -> TimedOut:
    return TimedOut(
        f"the statement ran longer than this org's {seconds * 1000:.0f} ms and was stopped",
        code="statement_timeout",
        hint="narrow the query (filters, limit) or ask for a longer statement_timeout_ms",
    )


# -- entering an org (sql/rls: orgbase.enter_session, enter_api_key, ...) ------------------


def entry_error(error: asyncpg.PostgresError) -> OrgbaseError | None:
    """The API's error for a failed entry (None when the error is not an entry's)."""
    refusal = _ENTRY_ERRORS.get(getattr(error, "sqlstate", None) or "")
    return refusal() if refusal is not None else None


def session_ended() -> Unauthorized:
    return Unauthorized(
        "the session has ended; sign in again", code="session_revoked", bearer="invalid"
    )


def api_key_unusable() -> Unauthorized:
    return Unauthorized(
        "the API key is unknown, revoked or expired", code="api_key_invalid", bearer="invalid"
    )


def org_not_found() -> NotFound:
    # The same answer whether the org does not exist or is not yours: ids leak nothing.
    return NotFound("no such org", code="org_not_found")


def mfa_required() -> Forbidden:
    return Forbidden(
        "this org requires a second factor: verify one (aal2) and use the new token",
        code="mfa_required",
        hint="POST /auth/v1/factors/{id}/challenge, then /verify",
    )


def sso_required() -> Forbidden:
    return Forbidden(
        "this org wants its members of your email domain signed in through its SSO",
        code="sso_required",
        hint="sign in with POST /auth/v1/sso {domain}",
    )


def sso_membership_suspended() -> Forbidden:
    return Forbidden(
        "your membership is bound to this org's SSO and your address is no longer on its"
        " verified domains: it gives no access until an admin of the org decides",
        code="sso_membership_suspended",
        hint="an org admin may release the membership from SSO or remove it",
    )


def impersonation_ended() -> Unauthorized:
    return Unauthorized("the impersonation has ended", code="impersonation_ended", bearer="invalid")


def function_claim_lost() -> Conflict:
    return Conflict(
        "the event's delivery is no longer claimed by this run (its lease ran out)",
        code="function_claim_lost",
    )


# The SQLSTATEs the entry functions raise: a dead credential, the org's sign-in policy, an
# org that is gone.
_ENTRY_ERRORS: dict[str, Callable[[], OrgbaseError]] = {
    "OB401": session_ended,
    "OB411": api_key_unusable,
    "OB412": impersonation_ended,
    "OB413": function_claim_lost,
    "OB403": mfa_required,
    "OB406": sso_required,
    "OB425": sso_membership_suspended,
    "OB404": org_not_found,
}
