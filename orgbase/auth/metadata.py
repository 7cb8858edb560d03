"""A user's metadata (GoTrue's ``user_metadata``): what callers may store, and the size
limit PostgreSQL enforces on what is stored.

The limit is on the stored jsonb as PostgreSQL renders it (``users_user_metadata_check``),
not on the JSON the caller sent: ``1e300`` is 6 characters of JSON and 301 digits of
jsonb, and a merge (``||``) grows what is there. So the statement that writes the
metadata is the check; ``stored_metadata`` turns its refusal into a 400, and the caller's
transaction (the account of a sign-up, the other changes of an update) is rolled back
with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from orgbase.core.errors import Invalid
from orgbase.core.postgres import Connection
from orgbase.core.stored_json import stored_length

MAX_LENGTH = 16384
"""Characters of the stored jsonb's text (``length(user_metadata::text)``)."""
_CONSTRAINT = "users_user_metadata_check"


def _too_large() -> Invalid:
    return Invalid(
        f"the user metadata is over {MAX_LENGTH} characters as stored",
        code="metadata_too_large",
    )


def _unstorable(what: str) -> Invalid:
    return Invalid(f"the user metadata has {what}", code="invalid_metadata")


def _check_text(value: str) -> None:
    # jsonb refuses \u0000, and UTF-8 cannot carry a lone surrogate.
    if "\x00" in value:
        raise _unstorable("a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise _unstorable("a lone surrogate") from None


def _check_values(value: Any) -> None:
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_values(item)
    elif isinstance(value, list):
        for item in value:
            _check_values(item)


def metadata_json(data: dict[str, Any] | None) -> str:
    """The metadata as JSON text for a ``$n::jsonb`` parameter (400 when it cannot be
    stored, or when even its JSON is over the limit)."""
    _check_values(data or {})
    try:
        text = json.dumps(data or {}, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise _unstorable("a number JSON cannot carry") from None
    # Stored, it is at least as long (core.stored_json); the statement checks the rest.
    if len(text) > MAX_LENGTH:
        raise _too_large()
    return text


async def check_stored_size(connection: Connection, text: str) -> None:
    """400 unless ``text``, stored as jsonb, fits (for a write that stores it whole)."""
    with stored_metadata():
        length = await stored_length(connection, text)
    if length > MAX_LENGTH:
        raise _too_large()


@contextmanager
def stored_metadata() -> Iterator[None]:
    """Around the statement that writes metadata: PostgreSQL's refusals become 400s
    (raised without the driver's error, whose detail holds the whole row)."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name != _CONSTRAINT:
            raise
        raise _too_large() from None
    except (asyncpg.DataError, asyncpg.ProgramLimitExceededError):
        raise _unstorable("a value PostgreSQL cannot store") from None
