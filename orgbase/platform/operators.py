"""`orgbase admin create`: make (or create) a platform admin account."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from orgbase.auth.accounts import normalize_email
from orgbase.auth.operator_accounts import create_admin, promote_admin
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.core.errors import Invalid
from orgbase.core.settings import Settings


async def make_platform_admin(
    settings: Settings, email: str, password: str | None, ask_password: Callable[[], str]
) -> bool:
    """Returns True when the account was created."""
    try:
        address = normalize_email(email)
    except Invalid as exc:
        raise ValueError(exc.message) from None
    connection = await asyncpg.connect(settings.database.system_url)
    try:
        if await promote_admin(connection, address):
            return False
        secret = password or ask_password()
        try:
            check_password_rules(secret, address, settings.auth.password_min_length)
        except Invalid as exc:
            raise ValueError(f"{exc.message}: {exc.details}") from None
        passwords = Passwords(settings.auth)
        try:
            password_hash = await passwords.hash(secret)
        finally:
            passwords.close()
        await create_admin(connection, address, password_hash)
        return True
    finally:
        await connection.close()
