"""The size of JSON once PostgreSQL stores it as jsonb: where stored sizes are limited.

A limit on what is stored is checked on the jsonb as PostgreSQL renders it back, not on
the JSON a caller sent: jsonb keeps a number as numeric and writes it out whole (``1e300``
is 6 characters of JSON and 301 digits stored) and puts a space after every ``:`` and
``,``. So JSON text over a limit is over it once stored too (a check before any query),
and JSON text under it is measured by PostgreSQL. Used by a user's metadata and an org's
settings.
"""

from __future__ import annotations

from orgbase.core.postgres import Connection


async def stored_length(connection: Connection, text: str, *, octets: bool = False) -> int:
    """Characters (``octets``: UTF-8 bytes) of the JSON ``text`` stored as jsonb. A value
    jsonb cannot hold (``\\u0000``) raises PostgreSQL's error, which callers translate."""
    measure = "octet_length" if octets else "length"
    length: int = await connection.fetchval(f"SELECT {measure}($1::jsonb::text)", text)
    return length
