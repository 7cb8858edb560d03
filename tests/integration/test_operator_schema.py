"""The issue's whole story: an operator writes a new app migration with a tenant table and
a function, runs `orgbase migrate`, and both are served through /v1/db, Supabase's
`postgrest` client and a client generated from /schema, with RLS inside the function."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Any, cast

import httpx
from litestar.testing import AsyncTestClient
from postgrest import AsyncPostgrestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.platform.app_migrations import new_migration
from orgbase.platform.migrations import migrate
from tests.integration.test_openapi_tables import _generate, _Through
from tests.support.data import EXAMPLE_APP_MIGRATIONS
from tests.support.http import org_member
from tests.support.waiting import eventually

MIGRATION = """
CREATE TABLE api.projects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    budget integer NOT NULL DEFAULT 0
);
SELECT orgbase.enable_tenancy('api.projects');
CREATE FUNCTION api.total_budget(min_budget integer DEFAULT 0) RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, api AS $$
    SELECT coalesce(sum(budget), 0) FROM api.projects WHERE budget >= min_budget $$;
"""


async def test_a_new_app_migration_is_served_to_every_client(
    settings: Settings, client: AsyncTestClient[OrgbaseApp], tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(EXAMPLE_APP_MIGRATIONS, directory)
    path = new_migration(directory, "projects")
    path.write_text(MIGRATION)
    applied = await migrate(settings.database.migration_url, app_directory=directory)
    assert applied == [path.name]

    _, _, mine = await org_member(client)
    _, _, theirs = await org_member(client)

    async def served() -> bool:
        answer = await client.get("/v1/db/rpc/total_budget", headers=mine)
        return answer.status_code == 200

    await eventually(served, what="the new function in the schema cache")
    await client.post("/v1/db/projects", headers=theirs, json={"name": "theirs", "budget": 1000})

    # /v1/db
    created = await client.post(
        "/v1/db/projects",
        headers={**mine, "Prefer": "missing=default"},
        json=[{"name": "a", "budget": 10}, {"name": "b"}],
    )
    assert created.status_code == 201
    total = await client.get("/v1/db/rpc/total_budget", headers=mine)
    assert total.json() == 10, "the other org's 1000 is invisible inside the function"

    # Supabase's postgrest client
    token = mine["Authorization"].removeprefix("Bearer ")
    postgrest = AsyncPostgrestClient(
        "http://testserver.local/v1/db", headers=mine, http_client=client
    )
    rows = await postgrest.table("projects").select("name,budget").order("name").execute()
    assert rows.data == [{"name": "a", "budget": 10}, {"name": "b", "budget": 0}]
    called = await postgrest.rpc(
        "total_budget", cast("dict[str, str]", {"min_budget": 5})
    ).execute()
    assert called.data == 10

    # A client generated from /schema
    document = await client.get("/schema")
    package = await _generate(document.content, tmp_path)
    try:
        ops = importlib.import_module(f"{package}.api.data")
        gen = importlib.import_module(package)
        models = importlib.import_module(f"{package}.models")
        api: Any = gen.AuthenticatedClient(base_url="http://testserver.local", token=token)
        api.set_async_httpx_client(
            httpx.AsyncClient(
                transport=_Through(client),
                base_url="http://testserver.local",
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        insert = importlib.import_module(f"{ops.__name__}.projects_insert")
        select = importlib.import_module(f"{ops.__name__}.projects_select")
        rpc = importlib.import_module(f"{ops.__name__}.rpc_total_budget_get")
        added = await insert.asyncio_detailed(
            client=api,
            body=models.ProjectsInsert(name="c", budget=5),
            prefer="return=representation",
        )
        assert added.status_code == 201
        listed = await select.asyncio_detailed(client=api, select="name", budget="gte.5")
        assert sorted(r.name for r in listed.parsed) == ["a", "c"]
        summed = await rpc.asyncio_detailed(client=api, min_budget=0)
        assert (summed.status_code, summed.parsed) == (200, 15)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
