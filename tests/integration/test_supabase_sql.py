"""A Supabase app's SQL, unchanged: the todo-list example's migration (auth.users,
auth.uid(), public, policies without orgbase) applied by `orgbase migrate` as an app
migration, then supabase-py using it as the example does, two users apart; org isolation
added to another app table by one line, combined with the app's own policy; and the
attacks: a context set by hand, a role switched by hand, another user's rows, another
org's rows."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import Client, create_client

from devstack import LocalStack
from orgbase.auth.keys import rotate_keys_file
from orgbase.core.settings import Settings
from orgbase.services.postgres.lint import Finding, lint
from tests.support.data import recreate_database
from tests.support.http import PASSWORD, unique_email
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env, stack_settings
from tests.support.supabase_js import run_script

ORGBASE = str(Path(sys.executable).parent / "orgbase")
APP = Path(__file__).resolve().parents[1] / "fixtures" / "supabase_todo"
DATABASE = "orgbase_supabase_sql"


@pytest.fixture(scope="module")
def app_env(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    keys = tmp_path_factory.mktemp("keys") / "jwks.json"
    rotate_keys_file(keys, "ES256")  # supabase-py decodes tokens itself: no EdDSA
    return server_env(
        stack,
        DATABASE,
        ORGBASE_APP_MIGRATIONS_DIR=str(APP),
        ORGBASE_AUTH_PERSONAL_ORG="true",
        ORGBASE_AUTH_SIGNING_KEYS_FILE=str(keys),
        ORGBASE_AUTH_JWT_ALGORITHM="ES256",
    )


@pytest.fixture(scope="module")
def app_settings(stack: LocalStack, app_env: dict[str, str]) -> Settings:
    """A fresh database that `orgbase migrate` brings up with the app's migrations."""
    asyncio.run(recreate_database(stack, DATABASE))
    migrated = subprocess.run(
        [ORGBASE, "migrate"], env=app_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "20230712094349_init.sql" in migrated.stderr + migrated.stdout
    return stack_settings(stack, DATABASE)


@pytest.fixture(scope="module")
def gateway(app_settings: Settings, app_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = {**app_env, "ORGBASE_TENANCY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = start_server(env, port, log_file=STATE_DIR / "supabase_sql_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
    del app_settings


def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """One statement on its own connection (the tests here are synchronous: the clients
    they drive are)."""

    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def owner_url(app_settings: Settings) -> str:
    return app_settings.database.migration_url


def org_of(owner_url: str, user_id: str) -> uuid.UUID:
    found = sql(
        owner_url,
        "SELECT org_id FROM orgbase.memberships WHERE user_id = $1 ORDER BY created_at LIMIT 1",
        uuid.UUID(user_id),
    )
    org: uuid.UUID = found[0]["org_id"]
    return org


def switch_org(gateway: str, client: Client, org: uuid.UUID | str, anon_key: str) -> dict[str, str]:
    """Headers of a token of ``client``'s user in ``org`` (orgbase's own token route)."""
    body = {"grant_type": "refresh_token", "refresh_token": refresh_of(client), "org_id": str(org)}
    moved = httpx.post(f"{gateway}/v1/auth/token", json=body)
    assert moved.status_code == 200, moved.text
    return {"Authorization": f"Bearer {moved.json()['access_token']}", "apikey": anon_key}


def signed_in(gateway: str, anon_key: str) -> tuple[Client, str]:
    """A new user of the app, signed up and in through supabase-py; and its user id."""
    client = create_client(gateway, anon_key)
    email = unique_email("todo")
    client.auth.sign_up({"email": email, "password": PASSWORD})
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert session.user is not None
    return client, session.user.id


def rows(answer: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = answer.data
    return data


def test_the_todo_example_runs_unchanged_two_users_apart(gateway: str, stack: LocalStack) -> None:
    anon_key = stack.secrets["publishable"]
    alice, alice_id = signed_in(gateway, anon_key)
    bob, bob_id = signed_in(gateway, anon_key)

    added = alice.table("todos").insert({"task": "buy milk", "user_id": alice_id}).execute()
    todo = rows(added)[0]
    assert todo["is_complete"] is False
    bob.table("todos").insert({"task": "walk the dog", "user_id": bob_id}).execute()

    mine = rows(alice.table("todos").select("*").order("id").execute())
    assert [t["task"] for t in mine] == ["buy milk"]
    done = alice.table("todos").update({"is_complete": True}).eq("id", todo["id"]).execute()
    assert rows(done)[0]["is_complete"] is True

    # Bob neither sees, changes nor deletes Alice's todo, nor writes one in her name.
    assert [t["task"] for t in rows(bob.table("todos").select("*").execute())] == ["walk the dog"]
    changed = bob.table("todos").update({"task": "hacked"}).eq("id", todo["id"]).execute()
    assert rows(changed) == []
    deleted = bob.table("todos").delete().eq("id", todo["id"]).execute()
    assert rows(deleted) == []
    with pytest.raises(APIError) as forged:
        bob.table("todos").insert({"task": "in her name", "user_id": alice_id}).execute()
    assert forged.value.code == "42501"

    gone = alice.table("todos").delete().eq("id", todo["id"]).execute()
    assert [t["id"] for t in rows(gone)] == [todo["id"]]
    assert rows(alice.table("todos").select("*").execute()) == []


async def test_the_todo_example_with_supabase_js(gateway: str, stack: LocalStack) -> None:
    """The same calls from supabase-js (tests/supabase_js/todo.mjs)."""
    seen = await run_script(
        "todo.mjs", ORGBASE_URL=gateway, ANON_KEY=stack.secrets["publishable"], PASSWORD=PASSWORD
    )
    assert seen == {
        "aliceSees": ["write the report"],
        "bobSees": ["water plants"],
        "completed": True,
        "bobUpdated": 0,
        "bobDeleted": 0,
        "forgedCode": "42501",
        "aliceDeleted": 1,
        "aliceLeft": 0,
    }


def _bearer(client: Client) -> dict[str, str]:
    session = client.auth.get_session()
    assert session is not None
    return {"Authorization": f"Bearer {session.access_token}"}


def test_org_isolation_combines_with_the_apps_own_policy(
    gateway: str, stack: LocalStack, owner_url: str
) -> None:
    anon_key = stack.secrets["publishable"]
    alice, alice_id = signed_in(gateway, anon_key)
    bob, bob_id = signed_in(gateway, anon_key)
    personal = org_of(owner_url, alice_id)
    sql(
        owner_url,
        "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'member')",
        personal,
        uuid.UUID(bob_id),
    )
    alice.table("notes").insert({"body": "alice in her org"}).execute()
    written = sql(owner_url, "SELECT org_id, author_id FROM public.notes")
    assert [(w["org_id"], str(w["author_id"])) for w in written] == [(personal, alice_id)]

    # Bob, in the same org, does not see it: the app's own policy still holds.
    bob_in_org = switch_org(gateway, bob, personal, anon_key)
    assert httpx.get(f"{gateway}/rest/v1/notes", headers=bob_in_org).json() == []

    # Alice, in another org of hers, does not see her own note: the org policy holds too.
    other = httpx.post(f"{gateway}/v1/orgs", headers=_bearer(alice), json={"name": "second"})
    assert other.status_code == 201, other.text
    in_other = switch_org(gateway, alice, other.json()["id"], anon_key)
    assert httpx.get(f"{gateway}/rest/v1/notes", headers=in_other).json() == []
    # ...nor writes into her first org from there.
    forged = httpx.post(
        f"{gateway}/rest/v1/notes", headers=in_other, json={"body": "x", "org_id": str(personal)}
    )
    assert forged.status_code in (400, 403), forged.text
    assert sql(owner_url, "SELECT count(*) AS n FROM public.notes")[0]["n"] == 1


def test_deleting_an_org_purges_its_rows_of_an_app_table(
    gateway: str, stack: LocalStack, owner_url: str
) -> None:
    """The purge runs as the tenant login, not switched: 0034's purge policy lets it delete
    the org's rows of an app table (and nothing else)."""
    carol, carol_id = signed_in(gateway, stack.secrets["publishable"])
    carol.table("notes").insert({"body": "carol's"}).execute()
    org = org_of(owner_url, carol_id)
    gone = httpx.delete(f"{gateway}/v1/orgs/{org}", headers=_bearer(carol))
    assert gone.status_code == 204, gone.text

    def left() -> int:
        found = sql(owner_url, "SELECT count(*) AS n FROM public.notes WHERE org_id = $1", org)
        return int(found[0]["n"])

    deadline = time.monotonic() + 20
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left() == 0


def rows_user(client: Client) -> str:
    user = client.auth.get_user()
    assert user is not None
    return user.user.id


def refresh_of(client: Client) -> str:
    session = client.auth.get_session()
    assert session is not None
    return session.refresh_token


def test_grants_and_policies_to_authenticated_mean_the_callers_role(
    gateway: str, stack: LocalStack, owner_url: str
) -> None:
    """announcements: a policy TO authenticated only. A user reads its org's rows; an API
    key of the same org (service_role) reads none: no policy names its role."""
    alice, alice_id = signed_in(gateway, stack.secrets["publishable"])
    org = org_of(owner_url, alice_id)
    sql(
        owner_url,
        "INSERT INTO public.announcements (org_id, body) VALUES ($1, 'hello'), ($2, 'elsewhere')",
        org,
        uuid.uuid4(),
    )
    read = rows(alice.table("announcements").select("body").execute())
    assert [a["body"] for a in read] == ["hello"]
    key = httpx.post(
        f"{gateway}/v1/orgs/{org}/api-keys",
        headers=_bearer(alice),
        json={"name": "server", "role": "admin"},
    )
    assert key.status_code == 201, key.text
    by_key = httpx.get(
        f"{gateway}/v1/db/announcements", headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert by_key.status_code == 200, by_key.text
    assert by_key.json() == []


HAND_SET = [
    ("request.jwt.claim.sub", "{user}"),
    ("request.jwt.claims", '{{"sub": "{user}", "role": "service_role"}}'),
    ("orgbase.user_id", "{user}"),
    ("orgbase.org_id", "{org}"),
    ("orgbase.context", "session|{org}|{user}|owner||1|1|" + "0" * 64),
]


def test_auth_functions_answer_only_from_the_signed_context(
    gateway: str, stack: LocalStack, app_settings: Settings, owner_url: str
) -> None:
    """The tenant login sets every setting Supabase's or orgbase's context is read from,
    and switches to each role itself: auth.uid() stays NULL and no row shows."""
    alice, alice_id = signed_in(gateway, stack.secrets["publishable"])
    alice.table("todos").insert({"task": "secret plan", "user_id": alice_id}).execute()
    asyncio.run(
        _hand_set_context(app_settings.database.api_url, alice_id, org_of(owner_url, alice_id))
    )


async def _hand_set_context(api_url: str, alice_id: str, org: uuid.UUID) -> None:
    tenant = await asyncpg.connect(api_url)
    try:
        for role in ("orgbase_api", "authenticated", "service_role", "anon"):
            async with tenant.transaction():
                for name, value in HAND_SET:
                    hand_set = value.format(user=alice_id, org=org)
                    await tenant.execute("SELECT set_config($1, $2, true)", name, hand_set)
                await tenant.execute("SELECT set_config('role', $1, true)", role)
                found = await tenant.fetchrow(
                    "SELECT auth.uid() AS uid, auth.role() AS role, auth.email() AS email,"
                    " auth.jwt() AS jwt"
                )
                assert found is not None
                assert dict(found) == {"uid": None, "role": None, "email": None, "jwt": None}
                if role != "orgbase_api":
                    assert await tenant.fetch("SELECT * FROM public.todos") == []
                    assert await tenant.fetch("SELECT * FROM auth.users") == []
    finally:
        await tenant.close()


def test_auth_users_holds_no_credential_and_accounts_stay_closed(
    app_settings: Settings, owner_url: str
) -> None:
    columns = {
        r["column_name"]
        for r in sql(
            owner_url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'users'",
        )
    }
    assert {"id", "email", "raw_user_meta_data", "raw_app_meta_data"} <= columns
    assert not {c for c in columns if "password" in c or "token" in c}
    asyncio.run(_accounts_closed(app_settings.database.api_url))


async def _accounts_closed(api_url: str) -> None:
    tenant = await asyncpg.connect(api_url)
    try:
        for role in ("authenticated", "service_role"):
            async with tenant.transaction():
                await tenant.execute("SELECT set_config('role', $1, true)", role)
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await tenant.fetch("SELECT password_hash FROM orgbase.users")
    finally:
        await tenant.close()


def test_lint_knows_per_user_tables(owner_url: str) -> None:
    async def linted() -> list[Finding]:
        connection = await asyncpg.connect(owner_url)
        try:
            return await lint(connection)
        finally:
            await connection.close()

    findings = {(f.rule, f.object): f for f in asyncio.run(linted())}
    per_user = findings[("per_user_table", "public.todos")]
    assert per_user.level == "warning"
    assert "auth.uid()" in per_user.message
    public = {rule for rule, name in findings if name.startswith("public.")}
    assert public == {"per_user_table", "context_not_wrapped"}  # the example's auth.uid()
    assert ("context_not_wrapped", "public.notes policy own notes") not in findings
    assert not [f for f in findings.values() if f.level == "error" and "public." in f.object]
