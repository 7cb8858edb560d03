"""An org's storage rows (its buckets, its uploads) read and written with the caller's
credential: PostgreSQL's row-level security decides what the caller sees and changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from orgbase.core.errors import NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.storage.access import Access


def transaction(db: Database, access: Access) -> AbstractAsyncContextManager[Connection]:
    """A transaction in the access's org, entered with its credential (not a grant)."""
    assert access.entry is not None
    return db.tenant_transaction_with(access.entry)


async def rows(
    db: Database, access: Access, select: str, keys: Sequence[Any] = ()
) -> list[asyncpg.Record]:
    """The rows ``select`` reads in the access's org with its credential (its rows need
    ``ctx.role IS NOT NULL``; its own parameters start at $5)."""
    assert access.entry is not None
    return await db.tenant_fetch(access.entry, select, keys)


async def one_row(
    db: Database,
    access: Access,
    select: str,
    keys: Sequence[Any],
    missing: Callable[[], NotFound],
) -> asyncpg.Record:
    """The first of ``rows``, else ``missing()``."""
    found = await rows(db, access, select, keys)
    if not found:
        raise missing()
    return found[0]
