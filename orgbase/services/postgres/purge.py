"""Deleting an org's rows from every tenant table (when the org is deleted).

It runs on the tenant pool in the org's purge context (orgbase.enter_org_purge: only an
org already closed for deletion, as its owner), so row-level security itself guarantees
that only that org's rows go. The purge neither audits nor announces each row.
"""

from __future__ import annotations

from uuid import UUID

from orgbase.core.postgres import Database, TenantEntry


async def purge_org_rows(db: Database, org_id: UUID) -> int:
    deleted = 0
    entry = TenantEntry.org_purge(org_id, f"purge-{org_id}")
    async with db.tenant_transaction_with(entry) as connection:
        tables = await connection.fetch(
            "SELECT format('%I.%I', schema_name, table_name) AS name FROM orgbase.tenant_tables"
            " WHERE to_regclass(format('%I.%I', schema_name, table_name)) IS NOT NULL"
            " AND policy <> 'shared_read'"
        )
        for table in tables:
            # The name comes from the registry of tenant tables, quoted by format('%I').
            status = await connection.execute(
                f"DELETE FROM {table['name']} WHERE org_id = $1",
                org_id,
            )
            deleted += int(status.split()[-1])
    return deleted
