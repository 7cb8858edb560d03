"""The ``orgbase`` command: serve, migrate, services up|down|status, seed-demo, lint, keys,
org export|import."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import click

from orgbase.core.settings import Settings, SettingsError
from orgbase.platform.cli_options import folder_option
from orgbase.platform.function_commands import functions

ENV_FILE_OPTION = click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="ORGBASE_LOCAL_ENV_FILE",
    help="KEY=VALUE file read before the environment. Default in a checkout: the local"
    " stack's .orgbase/services.env, when it exists.",
)


def _env_file(env_file: Path | None) -> Path | None:
    """The file named, else the local stack's settings in a checkout (said on stderr, so
    output meant for machines, lint --format json or keys anon, stays clean)."""
    from orgbase.platform.config import local_env_file

    if env_file is None and (found := local_env_file()) is not None:
        click.echo(f"reading {found} (the local stack's settings; --env-file to choose)", err=True)
        return found
    return env_file


def _settings(env_file: Path | None) -> Settings:
    from orgbase.platform.config import LOCAL_ENV_FILE, load_settings

    env_file = _env_file(env_file)
    try:
        return load_settings(env_file)
    except SettingsError as exc:
        hint = ""
        if env_file is None:
            hint = (
                f"\n(no --env-file given and no {LOCAL_ENV_FILE} here: start the local stack"
                " with `make run` or `orgbase services up`, or pass --env-file FILE)"
            )
        raise click.ClickException(f"invalid settings: {exc}{hint}") from exc


@click.group()
@click.version_option(package_name="orgbase", prog_name="orgbase")
def main() -> None:
    """orgbase: a multi-tenant Backend-as-a-Service."""


# -- serve -----------------------------------------------------------------------------


@main.command()
@ENV_FILE_OPTION
@click.option("--host", help="Listen address (default: ORGBASE_HTTP_HOST).")
@click.option("--port", type=int, help="Listen port (default: ORGBASE_HTTP_PORT).")
@click.option("--workers", type=int, help="Worker processes (default: ORGBASE_HTTP_WORKERS).")
def serve(env_file: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API until Ctrl-C or SIGTERM (in-flight requests are drained)."""
    from orgbase.observability.logging import configure_logging
    from orgbase.platform.server import serve as run_server

    env_file = _env_file(env_file)
    # The flags are settings too: workers read them from the environment, and the public
    # URL (links in mail) follows the port unless it is set.
    for variable, value in (("ORGBASE_HTTP_HOST", host), ("ORGBASE_HTTP_PORT", port)):
        if value is not None:
            os.environ[variable] = str(value)
    settings = _settings(env_file)
    configure_logging(settings.log)
    if env_file is not None:
        # Worker processes build their settings from the environment: hand the file on.
        os.environ["ORGBASE_LOCAL_ENV_FILE"] = str(env_file.resolve())
    http = settings.http
    if settings.is_dev:
        _dev_banner(settings)
    sys.exit(run_server(http.host, http.port, workers or http.workers, http))


def _dev_banner(settings: Settings) -> None:
    """What a developer needs after `make run`: where it is, the key, the mail."""
    url = settings.tenancy.public_url.rstrip("/")
    click.echo(f"serving on {url}, studio at {url}/studio (Ctrl-C to stop)")
    if settings.auth.publishable_key:
        click.echo(f"publishable (anon) key for Supabase clients: {settings.auth.publishable_key}")
    if settings.dev.mail_file:
        click.echo(f"mail sent by the server: {url}/v1/dev/mail (or the studio's Mail page)")


# -- migrate ---------------------------------------------------------------------------


@main.command()
@ENV_FILE_OPTION
@click.option(
    "--rescan",
    is_flag=True,
    help="Scan Redis for keys of earlier releases even if a past run recorded it done "
    "(after a rollback to an older release and a new upgrade).",
)
def migrate(env_file: Path | None, rescan: bool) -> None:
    """Apply pending migrations from sql/rls, then the app's (ORGBASE_APP_MIGRATIONS_DIR),
    set the login roles' passwords, and move data stored in an earlier release's layout
    (documents, Redis keys) into today's."""
    from redis.exceptions import RedisError

    from orgbase.core.errors import Unavailable
    from orgbase.platform.data_migrations import run_data_steps
    from orgbase.platform.migrations import MigrationError, sync_role_passwords
    from orgbase.platform.migrations import migrate as run_migrations

    settings = _settings(env_file)

    async def go() -> tuple[list[str], list[str]]:
        applied = await run_migrations(
            settings.database.migration_url, app_directory=Path(settings.app.migrations_dir)
        )
        await sync_role_passwords(settings.database)
        return applied, await run_data_steps(settings, rescan=rescan)

    try:
        applied, lines = asyncio.run(go())
    except (MigrationError, OSError, UnicodeDecodeError, RedisError, Unavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"migrations applied: {', '.join(applied)}" if applied else "migrations: up to date")
    for line in lines:
        click.echo(line)


# -- local services --------------------------------------------------------------------


@main.group()
def services() -> None:
    """The local development stack (PostgreSQL, Redis + Sentinel, Mongo-wire server)."""


STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".orgbase"),
    envvar="ORGBASE_LOCAL_STATE_DIR",
    show_default=True,
)
# The same as devstack.layout.DEFAULT_PORT_BASE (not imported: it would load the stack's
# modules for every command).
PORT_BASE_OPTION = click.option(
    "--port-base", type=int, default=25430, envvar="ORGBASE_LOCAL_PORT_BASE", show_default=True
)


@services.command("up")
@STATE_DIR_OPTION
@PORT_BASE_OPTION
@click.option(
    "--redis",
    "redis_mode",
    type=click.Choice(["sentinel", "cluster"]),
    default="sentinel",
    envvar="ORGBASE_LOCAL_REDIS",
    show_default=True,
    help="cluster: also start a 6-node Redis Cluster and point services.env at it.",
)
@click.option(
    "--pg-replica",
    is_flag=True,
    envvar="ORGBASE_LOCAL_PG_REPLICA",
    help="Also start a PostgreSQL streaming replica and send reads to it.",
)
def services_up(state_dir: Path, port_base: int, redis_mode: str, pg_replica: bool) -> None:
    """Start the services that are not running and write services.env."""
    from devstack import LocalStack, StackLayout
    from devstack.process import StackError

    stack = LocalStack(StackLayout(state_dir.resolve(), port_base))
    try:
        stack.up(redis_mode=redis_mode, pg_replica=pg_replica)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    for state in stack.status():
        click.echo(f"{state.name:9} {'up' if state.running else 'DOWN':5} {state.detail}")
    click.echo(f"settings written to {stack.layout.env_file}")


@services.command("down")
@STATE_DIR_OPTION
@PORT_BASE_OPTION
def services_down(state_dir: Path, port_base: int) -> None:
    """Stop the local services by pid."""
    from devstack import LocalStack, StackLayout

    stopped = LocalStack(StackLayout(state_dir.resolve(), port_base)).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@services.command("status")
@STATE_DIR_OPTION
@PORT_BASE_OPTION
def services_status(state_dir: Path, port_base: int) -> None:
    """Show which local services run; exit 1 when one is down."""
    from devstack import LocalStack, StackLayout

    states = LocalStack(StackLayout(state_dir.resolve(), port_base)).status()
    for state in states:
        click.echo(f"{state.name:9} {'up' if state.running else 'DOWN':5} {state.detail}")
    if not all(s.running for s in states):
        sys.exit(1)


# -- signing keys ----------------------------------------------------------------------


@main.group()
def keys() -> None:
    """The JWT signing keys (a JWK set file; the first key signs)."""


KEYS_FILE_ARGUMENT = click.argument("keys_file", type=click.Path(dir_okay=False, path_type=Path))


@keys.command("rotate")
@KEYS_FILE_ARGUMENT
@click.option("--algorithm", type=click.Choice(["EdDSA", "ES256", "HS256"]), default="ES256")
def keys_rotate(keys_file: Path, algorithm: str) -> None:
    """Add a new signing key in front (creates the file). Old keys keep verifying."""
    from orgbase.auth.keys import rotate_keys_file

    click.echo(f"new signing key: {rotate_keys_file(keys_file, algorithm)}")


@keys.command("retire")
@KEYS_FILE_ARGUMENT
@click.argument("kid")
def keys_retire(keys_file: Path, kid: str) -> None:
    """Remove a key: tokens it signed stop verifying."""
    from orgbase.auth.keys import KeyError_, retire_key

    try:
        retire_key(keys_file, kid)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"retired {kid}")


@keys.command("anon")
@ENV_FILE_OPTION
def keys_anon(env_file: Path | None) -> None:
    """Print the publishable key (Supabase's "anon key"): clients send it as ``apikey``;
    it grants nothing by itself."""
    key = _settings(env_file).auth.publishable_key
    if not key:
        raise click.ClickException("no publishable key is set (ORGBASE_AUTH_PUBLISHABLE_KEY)")
    click.echo(key)


# -- platform admins -------------------------------------------------------------------


@main.group()
def admin() -> None:
    """Platform operators."""


@admin.command("create")
@ENV_FILE_OPTION
@click.option("--email", required=True)
@click.option(
    "--password",
    envvar="ORGBASE_LOCAL_ADMIN_PASSWORD",
    help="For a new account (prompted when missing); an existing account keeps its password.",
)
def admin_create(env_file: Path | None, email: str, password: str | None) -> None:
    """Make an account a platform admin (creating the account if needed)."""
    from orgbase.platform.operators import make_platform_admin

    settings = _settings(env_file)

    def ask() -> str:
        return str(click.prompt("password", hide_input=True, confirmation_prompt=True))

    try:
        created = asyncio.run(make_platform_admin(settings, email, password, ask))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{email} is a platform admin{' (new account)' if created else ''}")


# -- demo data -------------------------------------------------------------------------


@main.command("seed-demo")
@ENV_FILE_OPTION
@click.option("--email", default="demo@orgbase.local", show_default=True)
@click.option("--password", default="demo-password-2026", show_default=True)
def seed_demo(env_file: Path | None, email: str, password: str) -> None:
    """Create (or reset) the demo user and its org "Demo Org" with 25 rows of api.items.

    The table comes from the example app migration (migrations/0001_items.sql): run
    `orgbase migrate` first. Dev mode only; the user's password is reset on every run."""
    from orgbase.platform.demo import seed

    settings = _settings(env_file)
    if not settings.is_dev:
        raise click.ClickException("seed-demo only runs in dev mode (ORGBASE_ENV=dev)")
    from orgbase.platform.demo import DemoError

    try:
        org_id = asyncio.run(seed(settings.database.migration_url, email, password))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"demo user: {email} / {password}  (org {org_id})")


# -- the operator's schema -------------------------------------------------------------


@main.group()
def migration() -> None:
    """App migrations (the operator's own tables and functions)."""


@migration.command("new")
@click.argument("name")
@folder_option("ORGBASE_APP_MIGRATIONS_DIR", "migrations")
def migration_new(name: str, directory: Path) -> None:
    """Write the next app migration file from a template (a tenant table, an RPC function)."""
    from orgbase.platform.app_migrations import TemplateError, new_migration

    try:
        path = new_migration(directory, name)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {path}")


main.add_command(functions)


@main.command()
@ENV_FILE_OPTION
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
def lint(env_file: Path | None, output: str) -> None:
    """Check the api schema's tables, policies and functions; exit 1 on errors."""
    import asyncpg

    from orgbase.platform.policy_lint import lint_database, render

    settings = _settings(env_file)
    try:
        findings = asyncio.run(lint_database(settings.database.migration_url))
    except asyncpg.UndefinedTableError as exc:
        raise click.ClickException(f"{exc}: run `orgbase migrate` first") from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render(findings, output))
    if any(f.level == "error" for f in findings):
        sys.exit(1)


@main.group()
def org() -> None:
    """An org's data out and back in (docs/operations/export.md)."""


def _transfer_failed(exc: Exception) -> click.ClickException:
    from orgbase.core.errors import OrgbaseError

    if isinstance(exc, OrgbaseError):
        return click.ClickException(f"{exc.code}: {exc.message}")
    return click.ClickException(str(exc))


@org.command("export")
@ENV_FILE_OPTION
@click.argument("org_id", type=click.UUID)
@click.option("--out", "out", type=click.Path(path_type=Path), help="Default: org-ORG.tar.gz")
def org_export(env_file: Path | None, org_id: uuid.UUID, out: Path | None) -> None:
    """Write ORG_ID's rows, documents, cache, members, settings, webhook endpoints (no
    secrets) and audit trail to one archive, from one snapshot of PostgreSQL."""
    from orgbase.core.errors import OrgbaseError
    from orgbase.platform.org_transfer import export_org

    settings = _settings(env_file)
    path = out or Path(f"org-{org_id}.tar.gz")
    try:
        manifest = asyncio.run(export_org(settings, org_id, path))
    except (OrgbaseError, OSError) as exc:
        raise _transfer_failed(exc) from exc
    lines = sum(f["lines"] for f in manifest["files"].values())
    click.echo(f"exported org {org_id} to {path} ({len(manifest['files'])} files, {lines} lines)")


@org.command("import")
@ENV_FILE_OPTION
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The new org's name (default: the archived org's).")
def org_import(env_file: Path | None, archive: Path, name: str | None) -> None:
    """Restore ARCHIVE as a new org (ids kept where free); nothing is left of an import
    that fails."""
    from orgbase.core.errors import OrgbaseError
    from orgbase.platform.org_transfer import import_org

    settings = _settings(env_file)
    try:
        summary = asyncio.run(import_org(settings, archive, name))
    except (OrgbaseError, OSError) as exc:
        raise _transfer_failed(exc) from exc
    click.echo(json.dumps(summary))


@main.group("import")
def import_group() -> None:
    """Bring a project from elsewhere into this deployment."""


@import_group.command("supabase")
@ENV_FILE_OPTION
@click.option("--from", "source", required=True, help="The Supabase database's URL.")
@click.option("--org", "org_id", type=click.UUID, help="The org of tables with org isolation.")
@click.option("--dry-run", is_flag=True, help="Report what would come and what cannot.")
def import_supabase_cmd(
    env_file: Path | None, source: str, org_id: uuid.UUID | None, dry_run: bool
) -> None:
    """Users (bcrypt hashes kept until their next sign-in), identities, TOTP factors and the
    app's rows (apply the app's migrations first). One transaction; a second run adds
    nothing."""
    from orgbase.core.errors import OrgbaseError
    from orgbase.platform.supabase_import import import_supabase

    settings = _settings(env_file)
    try:
        report = asyncio.run(import_supabase(settings, source, org=org_id, dry_run=dry_run))
    except (OrgbaseError, OSError, asyncpg_errors()) as exc:
        raise _transfer_failed(exc) from exc
    click.echo(json.dumps(report, indent=2))


def asyncpg_errors() -> type[Exception]:
    import asyncpg

    return asyncpg.PostgresError
