"""No row PostgreSQL describes in an error reaches a log line: a failed statement on the
users table once logged a password hash inside the driver's exception text."""

from __future__ import annotations

import io
import json

import asyncpg
import structlog

from orgbase.core.settings import LogSettings
from orgbase.observability.logging import configure_logging

HASH = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def test_a_failing_row_in_an_exception_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream)
    error = asyncpg.CheckViolationError(
        'new row for relation "users" violates check constraint "users_user_metadata_check"'
    )
    error.detail = f"Failing row contains (1, bob@x.test, {HASH}, {{}})."
    try:
        raise RuntimeError("wrapped") from error
    except RuntimeError:
        structlog.get_logger("t").exception("unhandled error")
    structlog.get_logger("t").warning(
        "request failed", cause="DETAIL:  Key (email)=(bob@x.test) already exists."
    )
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "CheckViolationError" in first["exception"]
    assert "Failing row contains [redacted]" in first["exception"]
    assert second["cause"] == "DETAIL:  Key (email)= [redacted]"
    assert HASH not in stream.getvalue()
    assert "bob@x.test" not in stream.getvalue()
