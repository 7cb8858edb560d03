"""App migrations: the operator's own schema, after orgbase's, in a history of its own;
and the policy linter on the shipped migrations and on a schema with every problem."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner

from devstack import LocalStack
from orgbase.platform.app_migrations import TEMPLATE, new_migration
from orgbase.platform.cli import main
from orgbase.platform.migrations import MigrationError, default_directory, migrate
from orgbase.platform.sql_lines import split_statements
from orgbase.services.postgres.lint import Finding, lint, unwrapped_context_calls
from tests.support.data import (
    EXAMPLE_APP_MIGRATIONS,
    scratch_database,
)
from tests.support.stack import server_env

SCRATCH = "orgbase_test_app_migrations"


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


def _app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(EXAMPLE_APP_MIGRATIONS, directory)
    return directory


async def test_app_migrations_apply_after_orgbase_in_their_own_history(
    scratch: str, tmp_path: Path
) -> None:
    directory = _app_dir(tmp_path)
    applied = await migrate(scratch, app_directory=directory)
    shipped = sorted(p.name for p in default_directory().glob("*.sql"))
    app = sorted(p.name for p in directory.glob("*.sql"))
    assert applied == shipped + app  # orgbase's first; the same numbers do not collide
    assert await migrate(scratch, app_directory=directory) == []
    history = await _fetch(scratch, "SELECT name FROM orgbase.app_migrations ORDER BY version")
    assert [r["name"] for r in history] == app
    tenant = await _fetch(scratch, "SELECT table_name, policy FROM orgbase.tenant_tables")
    assert [(r["table_name"], r["policy"]) for r in tenant] == [("items", "org")]


async def test_an_install_whose_items_table_came_before_app_migrations(
    scratch: str, tmp_path: Path
) -> None:
    """Before app migrations, seed-demo made api.items: the example adopts it, rows kept."""
    await migrate(scratch)
    connection = await asyncpg.connect(scratch)
    try:
        await connection.execute(
            "CREATE TABLE api.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " title text NOT NULL, status text, created_at timestamptz NOT NULL DEFAULT now());"
            "SELECT orgbase.enable_tenancy('api.items');"
            "INSERT INTO api.items (org_id, title) VALUES (gen_random_uuid(), 'old row');"
        )
    finally:
        await connection.close()
    applied = await migrate(scratch, app_directory=_app_dir(tmp_path))
    assert applied == ["0001_items.sql", "0002_item_functions.sql"]
    rows = await _fetch(scratch, "SELECT title FROM api.items")
    assert [r["title"] for r in rows] == ["old row"]


async def test_an_edited_applied_app_migration_is_refused(scratch: str, tmp_path: Path) -> None:
    directory = _app_dir(tmp_path)
    await migrate(scratch, app_directory=directory)
    first = directory / "0001_items.sql"
    first.write_text(first.read_text() + "\n-- tidied up\n")
    (directory / "0099_more.sql").write_text("CREATE TABLE api.never (id int PRIMARY KEY);")
    with pytest.raises(MigrationError, match=r"app migration 0001_items\.sql was changed"):
        await migrate(scratch, app_directory=directory)
    assert (await _fetch(scratch, "SELECT to_regclass('api.never') AS t"))[0]["t"] is None


@pytest.mark.parametrize(
    ("sql", "line", "cause"),
    [
        # A runtime error (no position from PostgreSQL): found by replaying statements.
        (
            "CREATE TABLE api.half (id int PRIMARY KEY);\n"
            "-- a comment; with a semicolon\n"
            "INSERT INTO api.half VALUES (1);\n"
            "DO $$ BEGIN PERFORM 1; END $$;\n"
            "INSERT INTO api.half VALUES ('a;b');\n",
            5,
            "invalid input syntax",
        ),
        # A syntax error: PostgreSQL's position.
        ("CREATE TABLE api.half (id int);\n\nSELEC 1;\n", 3, "syntax error"),
        (
            "CREATE TABLE api.half (id int PRIMARY KEY);\n"
            "INSERT INTO api.half VALUES (1);\n"
            "INSERT INTO api.half VALUES (1);\n",
            3,
            "duplicate key",
        ),
    ],
)
async def test_a_failing_app_migration_names_file_and_line_and_applies_nothing(
    scratch: str, tmp_path: Path, sql: str, line: int, cause: str
) -> None:
    directory = _app_dir(tmp_path)
    (directory / "0003_broken.sql").write_text(sql)
    with pytest.raises(MigrationError) as failure:
        await migrate(scratch, app_directory=directory)
    assert f"0003_broken.sql, line {line}" in str(failure.value)
    assert cause in str(failure.value)
    assert (await _fetch(scratch, "SELECT to_regclass('api.half') AS t"))[0]["t"] is None
    recorded = await _fetch(scratch, "SELECT name FROM orgbase.app_migrations ORDER BY version")
    assert [r["name"] for r in recorded] == ["0001_items.sql", "0002_item_functions.sql"]


async def test_two_runners_at_once_apply_each_app_migration_once(
    scratch: str, tmp_path: Path
) -> None:
    directory = _app_dir(tmp_path)
    first, second = await asyncio.gather(
        migrate(scratch, app_directory=directory), migrate(scratch, app_directory=directory)
    )
    app = sorted(p.name for p in directory.glob("*.sql"))
    assert sorted(n for n in first + second if n in app) == app
    history = await _fetch(scratch, "SELECT name FROM orgbase.app_migrations ORDER BY version")
    assert [r["name"] for r in history] == app


async def test_a_migration_that_is_not_utf8_or_badly_named_is_refused(
    scratch: str, tmp_path: Path
) -> None:
    directory = _app_dir(tmp_path)
    (directory / "0003_latin1.sql").write_bytes(b"-- caf\xe9\nSELECT 1;")
    with pytest.raises(MigrationError, match=r"0003_latin1\.sql: not UTF-8"):
        await migrate(scratch, app_directory=directory)
    (directory / "0003_latin1.sql").unlink()
    (directory / "notes.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="start with a number"):
        await migrate(scratch, app_directory=directory)
    # Refused before anything ran: not even orgbase's own migrations.
    assert (await _fetch(scratch, "SELECT to_regnamespace('orgbase') AS n"))[0]["n"] is None


def test_statements_split_around_quotes_comments_and_dollar_quotes() -> None:
    sql = (
        "SELECT ';';\n/* ; */ SELECT E'\\';';\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        'SELECT 1 AS ";"'
    )
    assert [line for line, _ in split_statements(sql)] == [1, 2, 3, 4]


def test_migration_new_writes_the_next_file(tmp_path: Path) -> None:
    directory = _app_dir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["migration", "new", "Projects", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    created = directory / "0003_projects.sql"
    assert created.read_text().startswith("-- 0003_projects.sql")
    refused = runner.invoke(main, ["migration", "new", "../escape", "--dir", str(directory)])
    assert refused.exit_code != 0
    assert not list(tmp_path.glob("*escape*"))


def _uncommented_template() -> str:
    code = re.compile(r"^-- (CREATE|SELECT|ALTER|    |\)|\$\$)")
    return "\n".join(line[3:] for line in TEMPLATE.splitlines() if code.match(line))


async def test_the_template_applies_when_uncommented_and_lints_clean(
    scratch: str, tmp_path: Path
) -> None:
    directory = _app_dir(tmp_path)
    path = new_migration(directory, "projects")
    path.write_text(_uncommented_template())
    applied = await migrate(scratch, app_directory=directory)
    assert path.name in applied
    connection = await asyncpg.connect(scratch)
    try:
        assert await lint(connection) == []
    finally:
        await connection.close()


# -- the linter ---------------------------------------------------------------------

PLANTED = """
CREATE TABLE api.no_rls (id int PRIMARY KEY, org_id uuid NOT NULL);
CREATE INDEX ON api.no_rls (org_id);
CREATE TABLE api.not_forced (id int PRIMARY KEY);
SELECT orgbase.enable_tenancy('api.not_forced');
ALTER TABLE api.not_forced NO FORCE ROW LEVEL SECURITY;
CREATE TABLE api.per_row (id int PRIMARY KEY);
SELECT orgbase.enable_tenancy('api.per_row');
CREATE POLICY slow ON api.per_row FOR SELECT TO orgbase_api
    USING (org_id = orgbase.current_org_id());
CREATE TABLE api.unindexed (id int PRIMARY KEY);
SELECT orgbase.enable_tenancy('api.unindexed');
DROP INDEX api.unindexed_org_id_idx;
CREATE TABLE api.parent (id int PRIMARY KEY);
SELECT orgbase.enable_tenancy('api.parent');
ALTER TABLE api.parent ADD UNIQUE (org_id, id);
CREATE TABLE api.loose_child (id int PRIMARY KEY, parent_id int REFERENCES api.parent (id));
SELECT orgbase.enable_tenancy('api.loose_child');
CREATE TABLE api.tight_child (id int PRIMARY KEY, parent_id int);
SELECT orgbase.enable_tenancy('api.tight_child');
ALTER TABLE api.tight_child ADD CONSTRAINT tight FOREIGN KEY (org_id, parent_id)
    REFERENCES api.parent (org_id, id);
CREATE TABLE api.keyless (body text);
SELECT orgbase.enable_tenancy('api.keyless');
GRANT SELECT ON api.parent TO PUBLIC;
CREATE FUNCTION api.definer() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS $$ SELECT 1 $$;
REVOKE EXECUTE ON FUNCTION api.definer() FROM PUBLIC;
CREATE FUNCTION api.loose_path() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
REVOKE EXECUTE ON FUNCTION api.loose_path() FROM PUBLIC;
CREATE FUNCTION api.public_fn() RETURNS int LANGUAGE sql SET search_path = pg_catalog
    AS $$ SELECT 1 $$;
"""
EXPECTED = {
    ("rls_not_forced", "api.no_rls"),
    ("not_a_tenant_table", "api.no_rls"),
    ("rls_not_forced", "api.not_forced"),
    ("context_not_wrapped", "api.per_row policy slow"),
    ("no_org_index", "api.unindexed"),
    ("cross_org_foreign_key", "api.loose_child constraint loose_child_parent_id_fkey"),
    ("no_primary_key", "api.keyless"),
    ("public_grant", "api.parent"),
    ("security_definer_function", "api.definer()"),
    ("function_search_path_mutable", "api.loose_path()"),
    ("public_grant", "api.public_fn()"),
}


async def test_lint_finds_each_planted_problem_and_nothing_else(scratch: str) -> None:
    await migrate(scratch)
    connection = await asyncpg.connect(scratch)
    try:
        await connection.execute(PLANTED)
        findings = await lint(connection)
    finally:
        await connection.close()
    assert {(f.rule, f.object) for f in findings} == EXPECTED
    levels = {f.rule: f.level for f in findings}
    assert levels["cross_org_foreign_key"] == "error"
    assert levels["context_not_wrapped"] == "warning"


def test_unwrapped_context_calls() -> None:
    assert unwrapped_context_calls("(org_id = orgbase.current_org_id())") == [
        "orgbase.current_org_id()"
    ]
    wrapped = "(org_id = ( SELECT orgbase.current_org_id() AS current_org_id))"
    assert unwrapped_context_calls(wrapped) == []
    raw = "(org_id = (current_setting('orgbase.org_id'::text))::uuid)"
    assert unwrapped_context_calls(raw) == ["current_setting("]


async def test_lint_command_exit_status_and_json(stack: LocalStack, scratch: str) -> None:
    """`orgbase lint` on the shipped migrations (with the example app migrations): clean,
    exit 0; with the planted problems: exit 1, every finding in the JSON."""
    await migrate(scratch, app_directory=EXAMPLE_APP_MIGRATIONS)
    env = server_env(stack, SCRATCH)
    status, output = await _orgbase(env, "lint", "--format", "json")
    assert status == 0, output
    assert msgspec.json.decode(output) == {"findings": [], "errors": 0, "warnings": 0}
    connection = await asyncpg.connect(scratch)
    try:
        await connection.execute(PLANTED)
    finally:
        await connection.close()
    status, output = await _orgbase(env, "lint", "--format", "json")
    assert status == 1
    report = msgspec.json.decode(output)
    found = {(f["rule"], f["object"]) for f in report["findings"]}
    assert found == EXPECTED
    assert report["errors"] == sum(1 for f in report["findings"] if f["level"] == "error")
    status, output = await _orgbase(env, "lint")
    assert status == 1
    assert "cross_org_foreign_key" in output


async def _orgbase(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The installed `orgbase` command, in its own process: (exit status, stdout)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "orgbase"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def test_finding_shape() -> None:
    finding = Finding("r", "error", "api.t", "m", "fix")
    assert finding.as_dict() == {
        "rule": "r",
        "level": "error",
        "object": "api.t",
        "message": "m",
        "remedy": "fix",
    }
