"""PostgreSQL errors as PostgREST reports them: the SQLSTATE as the code, and the HTTP
status PostgREST gives it. Raised on the data API only."""

from __future__ import annotations

import asyncpg

from orgbase.core.errors import OrgbaseError
from orgbase.core.postgres import entry_error


class DatabaseError(OrgbaseError):
    """A statement failed for a reason of the request (constraint, type, permission...)."""

    def __init__(
        self, status: int, sqlstate: str, message: str, details: str | None, hint: str | None
    ) -> None:
        super().__init__(message, code=sqlstate, details=details, hint=hint)
        self.status_code = status  # type: ignore[misc]


_EXACT = {
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
_BY_CLASS = {
    "08": 503,
    "53": 503,
    "57": 503,
    "28": 403,
    "0L": 403,
    "0P": 403,
    "22": 400,
    "23": 400,
    "42": 400,
}


def status_for(sqlstate: str) -> int:
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    return _BY_CLASS.get(sqlstate[:2], 400)


def translate(error: asyncpg.PostgresError) -> OrgbaseError:
    entering = entry_error(error)
    if entering is not None:
        return entering
    sqlstate = error.sqlstate or "XX000"
    detail = getattr(error, "detail", None)
    hint = getattr(error, "hint", None)
    return DatabaseError(
        status_for(sqlstate), sqlstate, str(error.args[0] if error.args else error), detail, hint
    )
