"""`orgbase admin create`: make (or create) a platform admin account."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from orgbase.auth.accounts import normalize_email
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
        promoted = await connection.execute(
            "UPDATE orgbase.users SET is_platform_admin = true, updated_at = now()"
            " WHERE email = $1 AND deleted_at IS NULL",
            address,
        )
        if promoted != "UPDATE 0":
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
        # The operator vouches for the address: it counts as proven (production refuses
        # unconfirmed sign-ins).
        await connection.execute(
            "INSERT INTO orgbase.users"
            " (email, password_hash, is_platform_admin, password_changed_at, email_confirmed_at)"
            " VALUES ($1, $2, true, now(), now())",
            address,
            password_hash,
        )
        return True
    finally:
        await connection.close()
