"""A storage write PostgreSQL refuses for its value is answered in our words: its own
message and DETAIL describe the database (and may quote the value), not the request."""

from __future__ import annotations

import asyncpg

from orgbase.storage.publish import write_error


def test_a_refused_value_is_described_without_postgresqls_text() -> None:
    for exc in (
        asyncpg.UntranslatableCharacterError(
            "unsupported Unicode escape sequence DETAIL: \\u0000 cannot be converted to text."
        ),
        asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.CheckViolationError('new row for relation "objects" violates check constraint'),
    ):
        refused = write_error(exc)
        assert refused is not None
        assert refused.code == "InvalidRequest"
        assert str(exc) not in refused.message
        for word in ("DETAIL", "UTF8", "0x00", "relation", "constraint"):
            assert word not in refused.message, refused.message
