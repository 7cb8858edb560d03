"""Deleting an org's rows from every tenant table (when the org is deleted).

It runs on the tenant pool in the org's purge context (orgbase.enter_org_purge: only an
org already closed for deletion, as its owner), so row-level security itself guarantees
that only that org's rows go. The purge neither audits nor announces each row.
"""

from __future__ import annotations

from uuid import UUID

from orgbase.core.postgres import Database, TenantEntry
from orgbase.services.postgres.statements import TABLES_TO_PURGE, purge_rows


async def purge_org_rows(db: Database, org_id: UUID) -> int:
    deleted = 0
    entry = TenantEntry.org_purge(org_id, f"purge-{org_id}")
    async with db.tenant_transaction_with(entry) as connection:
        for table in await connection.fetch(TABLES_TO_PURGE):
            status = await connection.execute(purge_rows(table["name"]), org_id)
            deleted += int(status.split()[-1])
    return deleted
