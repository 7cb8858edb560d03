"""``orgbase lint``: the policy linter against the database of the settings."""

from __future__ import annotations

import asyncpg

from orgbase.services.postgres.lint import Finding, lint, render

__all__ = ["Finding", "lint_database", "render"]


async def lint_database(url: str) -> list[Finding]:
    connection = await asyncpg.connect(url)
    try:
        return await lint(connection)
    finally:
        await connection.close()
