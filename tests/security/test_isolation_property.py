"""Property: whatever orgs, members and rows exist, no query through the API and no query
as orgbase_api under any org's context returns another org's rows.

Hypothesis does not drive coroutines, so it runs in a worker thread and sends each
example to the test's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from orgbase.core.context import OrgContext, Role
from orgbase.core.postgres import Database, TenantEntry
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, new_user, secret_of, session_of

T = TypeVar("T")
ROLES: tuple[Role, ...] = ("owner", "admin", "member", "viewer")
USERS = 5

# An org: its members (user index -> role; the first member is the owner) and row titles.
org_strategy = st.fixed_dictionaries(
    {
        "members": st.dictionaries(
            st.integers(0, USERS - 1), st.sampled_from(ROLES), min_size=1, max_size=USERS
        ),
        "rows": st.lists(
            st.text(
                st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                min_size=1,
                max_size=12,
            ),
            max_size=6,
        ),
    }
)
world_strategy = st.lists(org_strategy, min_size=2, max_size=4)


async def build_world(
    settings: Settings, users: list[dict[str, Any]], world: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(settings.database.migration_url)
    built = []
    try:
        async with connection.transaction():
            for spec in world:
                org_id = await connection.fetchval(
                    "INSERT INTO orgbase.orgs (name) VALUES ('prop') RETURNING id"
                )
                members = {uuid.UUID(users[i]["id"]): role for i, role in spec["members"].items()}
                await connection.executemany(
                    "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
                    [(org_id, user_id, role) for user_id, role in members.items()],
                )
                titles = [f"{org_id}:{n}:{t}" for n, t in enumerate(spec["rows"])]
                await connection.executemany(
                    "INSERT INTO api.items (org_id, title) VALUES ($1, $2)",
                    [(org_id, t) for t in titles],
                )
                built.append({"org_id": org_id, "members": members, "titles": set(titles)})
    finally:
        await connection.close()
    return built


async def check_world(
    db: Database,
    client: AsyncTestClient[OrgbaseApp],
    tokens: dict[uuid.UUID, str],
    built: list[dict[str, Any]],
) -> None:
    mine = {o["org_id"] for o in built}
    for org in built:
        for user_id, role in org["members"].items():
            ctx = OrgContext(
                org_id=org["org_id"],
                user_id=user_id,
                role=role,
                request_id="prop",
                session_id=session_of(tokens[user_id]),
                session_secret=secret_of(tokens[user_id]),
            )
            rows = await db.tenant_fetch(
                TenantEntry.for_context(ctx),
                "SELECT org_id, title FROM api.items WHERE ctx.role IS NOT NULL"
                " AND org_id = ANY($5::uuid[]) OFFSET 0",
                [list(mine)],
            )
            assert {r["org_id"] for r in rows} <= {org["org_id"]}
            assert {r["title"] for r in rows} == org["titles"]
            headers = bearer(tokens[user_id])
            members = await client.get(f"/v1/orgs/{org['org_id']}/members", headers=headers)
            assert members.status_code == 200
            assert {m["user_id"] for m in members.json()} == {str(u) for u in org["members"]}
            if role in ("owner", "admin"):
                audit = await client.get(f"/v1/orgs/{org['org_id']}/audit", headers=headers)
                assert audit.status_code == 200
                assert {e["org_id"] for e in audit.json()["items"]} <= {str(org["org_id"])}
            for other in built:
                if user_id not in other["members"]:
                    response = await client.get(
                        f"/v1/orgs/{other['org_id']}/members", headers=headers
                    )
                    assert response.status_code == 404
    # Without a context, nothing at all.
    async with db.api.acquire() as connection:
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM api.items WHERE org_id = ANY($1::uuid[])", list(mine)
            )
            == 0
        )


async def test_no_query_crosses_orgs(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    people = [await new_user(client) for _ in range(USERS)]
    users = [user for user, _ in people]
    tokens = {uuid.UUID(user["id"]): t["access_token"] for user, t in people}
    db = Database(settings.database)
    await db.open()
    loop = asyncio.get_running_loop()

    def on_loop(coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)  # type: ignore[arg-type]

    @hypothesis_settings(
        max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(world=world_strategy)
    def property_holds(world: list[dict[str, Any]]) -> None:
        built = on_loop(build_world(settings, users, world))
        on_loop(check_world(db, client, tokens, built))

    try:
        await asyncio.to_thread(property_holds)
    finally:
        await db.close()
