"""`orgbase import supabase`: a source database with a GoTrue-like auth schema (the columns
GoTrue documents, tests/fixtures/supabase_source/) and the todo example, users hashed with
bcrypt. A dry run writes nothing and says what cannot come; the import brings users,
identities, TOTP factors and rows; a second run adds nothing; an imported user signs in with
their old password, which is then rehashed with argon2id; a database that is not Supabase's
is refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import bcrypt
import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.data import admin_url, recreate_database
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env, stack_settings

ORGBASE = str(Path(sys.executable).parent / "orgbase")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APP = FIXTURES / "supabase_todo"
SOURCE = "supabase_source"
TARGET = "orgbase_supabase_import"
ALICE, BOB = uuid.uuid4(), uuid.uuid4()
OLD_PASSWORD = "correct horse battery staple"


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


_USERS = """
INSERT INTO auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
    raw_user_meta_data, raw_app_meta_data, created_at, updated_at, last_sign_in_at, phone)
VALUES ($1, 'authenticated', 'authenticated', 'alice@example.test', $3, now(),
        '{"name": "Alice"}', '{"provider": "email"}', now(), now(), now(), NULL),
       ($2, 'authenticated', 'authenticated', 'bob@example.test', $4, NULL,
        '{}', '{"provider": "email"}', now(), now(), NULL, NULL),
       (gen_random_uuid(), 'authenticated', 'authenticated', NULL, NULL, NULL,
        '{}', '{"provider": "phone"}', now(), now(), NULL, '+15550100'),
       (gen_random_uuid(), 'authenticated', 'authenticated', 'dave@example.test',
        '$1$abcdefgh$0123456789abcdefghij', now(), '{}', '{}', now(), now(), NULL, NULL)
"""
_LINKS = """
INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at,
                             updated_at, last_sign_in_at)
VALUES ($1::uuid::text, $1::uuid,
        jsonb_build_object('sub', $1::uuid::text, 'email', 'alice@example.test'),
        'email', now(), now(), now()),
       ('google-sub-123', $1::uuid, '{"sub": "google-sub-123", "email": "alice@example.test"}',
        'google', now(), now(), now());
INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                              updated_at, secret)
VALUES (gen_random_uuid(), $1, 'phone app', 'totp', 'verified', now(), now(),
        'JBSWY3DPEHPK3PXP'),
       (gen_random_uuid(), $1, 'key', 'webauthn', 'verified', now(), now(), NULL);
"""


def _run(url: str, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
    async def go() -> list[Any]:
        connection = await asyncpg.connect(url)
        try:
            return [await connection.fetch(sql, *args) for sql, args in statements]
        finally:
            await connection.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def source_url(stack: LocalStack) -> str:
    asyncio.run(recreate_database(stack, SOURCE))
    url = admin_url(stack, SOURCE)

    async def build() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute((FIXTURES / "supabase_source" / "gotrue_auth.sql").read_text())
            await connection.execute((APP / "20230712094349_init.sql").read_text())
            await connection.execute(_USERS, ALICE, BOB, _hash(OLD_PASSWORD), _hash("bob's"))
            for statement in _LINKS.strip().split(";\n"):
                if statement.strip():
                    await connection.execute(statement, ALICE)
            await connection.execute(
                "INSERT INTO public.todos (user_id, task)"
                " VALUES ($1, 'alice task'), ($2, 'bob task')",
                ALICE,
                BOB,
            )
        finally:
            await connection.close()

    asyncio.run(build())
    return url


@pytest.fixture(scope="module")
def target(stack: LocalStack) -> tuple[Settings, dict[str, str]]:
    asyncio.run(recreate_database(stack, TARGET))
    env = server_env(stack, TARGET, ORGBASE_APP_MIGRATIONS_DIR=str(APP))
    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    return stack_settings(stack, TARGET), env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORGBASE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def gateway(target: tuple[Settings, dict[str, str]]) -> Iterator[str]:
    port = free_port()
    env = {**target[1], "ORGBASE_AUTH_PERSONAL_ORG": "true"}
    process = start_server(env, port, log_file=STATE_DIR / "supabase_import_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def _count(settings: Settings, sql: str) -> int:
    return int(_run(settings.database.migration_url, (sql, ()))[0][0][0])


def test_import_dry_run_then_import_then_nothing_more(
    source_url: str, target: tuple[Settings, dict[str, str]], gateway: str
) -> None:
    settings, env = target
    dry = _cli(env, "import", "supabase", "--from", source_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["found"]["users"] == 2
    assert report["found"]["identities"] == 1  # the email identity is the account itself
    assert report["found"]["factors"] == 1
    assert report["found"]["rows"] == {"public.todos": 2}
    reasons = sorted(r["reason"].split(" (")[0] for r in report["refused"])
    assert reasons == [
        "a password hash orgbase does not verify",
        "a webauthn factor",
        "no email address",
    ]
    assert _count(settings, "SELECT count(*) FROM orgbase.users") == 0

    done = json.loads(_cli(env, "import", "supabase", "--from", source_url).stdout)
    assert done["added"] == {
        "users": 2,
        "identities": 1,
        "factors": 1,
        "rows": {"public.todos": 2},
    }
    again = json.loads(_cli(env, "import", "supabase", "--from", source_url).stdout)
    assert again["added"] == {
        "users": 0,
        "identities": 0,
        "factors": 0,
        "rows": {"public.todos": 0},
    }
    confirmed = _run(
        settings.database.migration_url,
        ("SELECT email, email_confirmed_at IS NOT NULL AS c FROM orgbase.users ORDER BY 1", ()),
    )[0]
    assert [(r["email"], r["c"]) for r in confirmed] == [
        ("alice@example.test", True),
        ("bob@example.test", False),
    ]


def test_an_imported_user_signs_in_with_the_old_password_then_has_argon2id(
    source_url: str, target: tuple[Settings, dict[str, str]], gateway: str, stack: LocalStack
) -> None:
    settings, env = target
    _cli(env, "import", "supabase", "--from", source_url)
    apikey = {"apikey": stack.secrets["publishable"]}
    wrong = httpx.post(
        f"{gateway}/auth/v1/token?grant_type=password",
        headers=apikey,
        json={"email": "alice@example.test", "password": "not it"},
    )
    assert wrong.status_code == 401, wrong.text
    assert wrong.json()["code"] == "invalid_credentials"
    signed_in = httpx.post(
        f"{gateway}/auth/v1/token?grant_type=password",
        headers=apikey,
        json={"email": "alice@example.test", "password": OLD_PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    stored = _run(
        settings.database.migration_url,
        ("SELECT password_hash FROM orgbase.users WHERE id = $1", (ALICE,)),
    )[0][0][0]
    assert stored.startswith("$argon2id$")
    token = signed_in.json()["access_token"]
    todos = httpx.get(
        f"{gateway}/rest/v1/todos", headers={**apikey, "Authorization": f"Bearer {token}"}
    )
    assert [t["task"] for t in todos.json()] == ["alice task"]
    again = httpx.post(
        f"{gateway}/auth/v1/token?grant_type=password",
        headers=apikey,
        json={"email": "alice@example.test", "password": OLD_PASSWORD},
    )
    assert again.status_code == 200, again.text


def test_a_database_that_is_not_supabases_is_refused(
    target: tuple[Settings, dict[str, str]], stack: LocalStack
) -> None:
    _, env = target
    # orgbase's own database has an auth.users, without GoTrue's password column.
    refused = _cli(env, "import", "supabase", "--from", admin_url(stack, TARGET), "--dry-run")
    assert refused.returncode == 1
    assert "import_source_invalid" in refused.stderr
    assert "Traceback" not in refused.stderr
