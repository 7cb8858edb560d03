"""Deleting an org's rows from every tenant table (when the org is deleted).

It runs on the tenant pool with the org's context and the owner role, so row-level
security itself guarantees that only that org's rows go.
"""

from __future__ import annotations

from orgbase.core.context import OrgContext
from orgbase.core.postgres import Database


async def purge_org_rows(db: Database, ctx: OrgContext) -> int:
    owner = OrgContext(
        org_id=ctx.org_id, user_id=ctx.user_id, role="owner", request_id=ctx.request_id
    )
    deleted = 0
    async with db.tenant_transaction(owner) as connection:
        tables = await connection.fetch(
            "SELECT format('%I.%I', schema_name, table_name) AS name FROM orgbase.tenant_tables"
            " WHERE to_regclass(format('%I.%I', schema_name, table_name)) IS NOT NULL"
        )
        for table in tables:
            # The name comes from the registry of tenant tables, quoted by format('%I').
            status = await connection.execute(
                f"DELETE FROM {table['name']} WHERE org_id = $1",
                ctx.org_id,
            )
            deleted += int(status.split()[-1])
    return deleted
