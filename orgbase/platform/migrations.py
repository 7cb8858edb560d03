"""Ordered SQL migrations: orgbase's own (sql/rls/), then the operator's app migrations
(``ORGBASE_APP_MIGRATIONS_DIR``), each set with its own history table so their numbers
never collide.

Each file runs in its own transaction and is recorded with its SHA-256; a file changed
after it was applied is refused. A session-level advisory lock serialises concurrent
runners (two gateways starting at once): the second waits, then finds nothing to do.
A failing file leaves nothing applied and its error names the file and line.
After a run, ``NOTIFY orgbase_schema`` tells gateways to reload their schema cache.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import structlog

from orgbase.core.settings import DatabaseSettings
from orgbase.platform.sql_lines import error_line

log = structlog.get_logger("orgbase.migrations")

LOCK_KEY = 0x6F7267_62617365  # "orgbase"
SCHEMA_CHANNEL = "orgbase_schema"
ORGBASE_HISTORY = "orgbase.schema_migrations"
APP_HISTORY = "orgbase.app_migrations"
"""Created by sql/rls/0016: app migrations run after orgbase's, so it exists by then."""
_NO_PUBLIC_EXECUTE = "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"
_PUBLIC_EXECUTE = "ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC"
_LOGIN_ROLES = {"api_url": "orgbase_api", "system_url": "orgbase_system"}


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str
    checksum: str


def default_directory() -> Path:
    """sql/rls in a checkout, or the copy shipped inside the wheel."""
    shipped = Path(str(importlib.resources.files("orgbase"))) / "_sql" / "rls"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "sql" / "rls"


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        version, _, _ = path.stem.partition("_")
        if not version.isdigit():
            raise MigrationError(f"{path.name}: migration files start with a number (0001_...)")
        data = path.read_bytes()
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise MigrationError(f"{path.name}: not UTF-8 (byte {exc.start})") from None
        migrations.append(Migration(version, path.name, text, hashlib.sha256(data).hexdigest()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number in {directory}")
    return migrations


async def _ensure_bookkeeping(connection: asyncpg.Connection) -> None:
    await connection.execute(
        """
        CREATE SCHEMA IF NOT EXISTS orgbase;
        CREATE TABLE IF NOT EXISTS orgbase.schema_migrations (
            version text PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def app_migrations(directory: Path | None) -> list[Migration]:
    """The operator's migrations: none when the directory does not exist."""
    if directory is None or not directory.is_dir():
        return []
    return load_migrations(directory)


async def _apply(
    connection: asyncpg.Connection, migrations: list[Migration], history: str, label: str
) -> list[str]:
    applied = {
        r["version"]: r
        # history is one of the two constants above, never input.
        for r in await connection.fetch(f"SELECT version, name, checksum FROM {history}")  # noqa: S608
    }
    done: list[str] = []
    for migration in migrations:
        record = applied.get(migration.version)
        if record is not None:
            if record["checksum"] != migration.checksum:
                raise MigrationError(
                    f"{label}migration {migration.name} was changed after it was applied "
                    f"(recorded sha256 {record['checksum'][:12]}, file "
                    f"{migration.checksum[:12]}); never edit an applied migration, "
                    "add a new one"
                )
            continue
        try:
            async with connection.transaction():
                if history == APP_HISTORY:
                    # The operator's functions get no EXECUTE for PUBLIC (api's defaults
                    # give it to orgbase_api); orgbase's own migrations grant explicitly.
                    await connection.execute(_NO_PUBLIC_EXECUTE)
                await connection.execute(migration.sql)
                if history == APP_HISTORY:
                    await connection.execute(_PUBLIC_EXECUTE)
                await connection.execute(
                    f"INSERT INTO {history} (version, name, checksum) VALUES ($1, $2, $3)",  # noqa: S608
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as exc:
            line = await error_line(connection, migration.sql, exc)
            where = f"{migration.name}, line {line}" if line else migration.name
            raise MigrationError(
                f"{label}migration {where} failed (nothing of it was applied): {exc}"
            ) from exc
        log.info("migration applied", migration=migration.name, kind=label.strip() or "orgbase")
        done.append(migration.name)
    return done


async def migrate(
    migration_url: str,
    directory: Path | None = None,
    *,
    app_directory: Path | None = None,
    wait_seconds: float = 60.0,
) -> list[str]:
    """Apply pending migrations, orgbase's then the app's (from ``app_directory``); return
    the names applied (empty when up to date)."""
    migrations = load_migrations(directory or default_directory())
    app = app_migrations(app_directory)
    connection = await asyncpg.connect(migration_url, timeout=wait_seconds)
    try:
        await connection.execute(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'")
        await connection.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await _ensure_bookkeeping(connection)
            done = await _apply(connection, migrations, ORGBASE_HISTORY, "")
            if app:
                done += await _apply(connection, app, APP_HISTORY, "app ")
            await connection.execute(f"NOTIFY {SCHEMA_CHANNEL}, 'migrated'")
            return done
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration failed: {exc}") from exc
    finally:
        await connection.close()


async def sync_role_passwords(settings: DatabaseSettings) -> None:
    """Give the login roles the passwords found in their URLs (idempotent)."""
    connection = await asyncpg.connect(settings.migration_url)
    try:
        for field, role in _LOGIN_ROLES.items():
            parts = urlsplit(getattr(settings, field))
            user = unquote(parts.username or "")
            if user != role:
                raise MigrationError(
                    f"ORGBASE_DATABASE_{field.upper()} must log in as {role}, not {user!r}"
                )
            if parts.password is None:
                continue
            statement = await connection.fetchval(
                "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)",
                role,
                unquote(parts.password),
            )
            await connection.execute(statement)
    finally:
        await connection.close()
