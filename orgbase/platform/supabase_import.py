"""``orgbase import supabase --from postgresql://...``: a Supabase project's users (with
their bcrypt hashes), identities, TOTP factors and the app's rows into this deployment
(docs/supabase-sql.md, "Moving in").

Everything is read first, then written in one transaction as the migration owner: an
import cut short leaves nothing, and a second run adds nothing (every write skips what is
there). ``--dry-run`` reports what would come and what cannot (with the reason), and writes
nothing. The app's schema comes by its own migrations (``orgbase migrate``), before this.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from orgbase.auth.supabase_users import is_supabase, read_accounts, write_accounts
from orgbase.core.errors import Invalid
from orgbase.core.settings import Settings
from orgbase.services.postgres.app_copy import read_app_rows, write_app_rows


async def import_supabase(
    settings: Settings, source_url: str, *, org: UUID | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """The report: what was (or would be) imported, and what cannot be, with why."""
    try:
        source = await asyncpg.connect(source_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise Invalid(
            f"cannot reach the source database: {exc}", code="import_source_invalid"
        ) from None
    target = await asyncpg.connect(settings.database.migration_url)
    try:
        if not await is_supabase(source):
            raise Invalid(
                "the source is not a Supabase database (no auth.users with GoTrue's columns)",
                code="import_source_invalid",
            )
        async with source.transaction(isolation="repeatable_read", readonly=True):
            accounts = await read_accounts(source, target)
            rows = await read_app_rows(source, target, org)
        report: dict[str, Any] = {
            "dry_run": dry_run,
            "found": {
                "users": len(accounts.users),
                "identities": len(accounts.identities),
                "factors": len(accounts.factors),
                "rows": {table.name: len(lines) for table, _, lines in rows.tables},
            },
            "refused": accounts.refused + rows.refused,
        }
        if not dry_run:
            async with target.transaction():
                report["added"] = {
                    **await write_accounts(target, accounts),
                    "rows": await write_app_rows(target, rows, org),
                }
    finally:
        await source.close()
        await target.close()
    return report
