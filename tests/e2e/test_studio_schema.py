"""The studio's schema page in a real browser: tables with columns, policies and indexes,
the policy linter's findings, and the RPC runner (RLS applies to what it returns)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import Studio
from tests.support.http import add_member, bearer, create_org, new_user, sign_in

pytestmark = pytest.mark.slow

Client = AsyncTestClient[OrgbaseApp]


async def test_schema_page_and_rpc_runner(studio: Studio, client: Client) -> None:
    user, tokens = await new_user(client)
    org_id = await create_org(client, tokens, "Schema Org")
    scoped = await sign_in(client, user["email"], org_id)
    await client.post(
        "/v1/db/tasks",
        headers=bearer(scoped["access_token"]),
        json=[{"title": "mine", "points": 4}],
    )
    other, other_tokens = await new_user(client)
    other_org = await create_org(client, other_tokens, "Other")
    other_scoped = await sign_in(client, other["email"], other_org)
    await client.post(
        "/v1/db/tasks",
        headers=bearer(other_scoped["access_token"]),
        json=[{"title": "THEIRS-secret", "points": 9}],
    )
    page = studio.page
    await studio.sign_in(user["email"])
    await studio.open("schema")
    await studio.settled()
    tasks = page.locator('section[data-table="tasks"]')
    await expect(tasks).to_contain_text("RLS forced")
    await expect(tasks).to_contain_text("preset org")
    await expect(tasks).to_contain_text("tenant_select")
    await expect(tasks).to_contain_text("tasks_org_id_idx")
    await expect(tasks).to_contain_text("timestamp with time zone")
    await expect(page.locator('section[data-table="private_notes"]')).to_contain_text(
        "preset owner_private"
    )
    # The test schema's tasks.owner_id -> people(id) can cross orgs: the linter says so.
    lint = page.locator('section[aria-label="lint findings"]')
    await expect(lint).to_contain_text("cross_org_foreign_key")
    await expect(lint).to_contain_text("api.tasks constraint tasks_owner_id_fkey")
    await studio.screenshot("schema")

    await page.select_option('[aria-label="Function"]', "add")
    await expect(page.locator("[data-signature]")).to_contain_text("api.add(a integer")
    await page.fill('[aria-label="Arguments (JSON)"]', '{"a": 40, "b": 2}')
    await page.click("text=Call")
    await expect(page.locator("[data-rpc-result]")).to_have_text("42")

    await page.select_option('[aria-label="Function"]', "tasks_over")
    await page.fill('[aria-label="Arguments (JSON)"]', '{"min_points": 0}')
    await page.fill('[aria-label="Query string"]', "select=title")
    await page.click("text=Call")
    await expect(page.locator("[data-rpc-result]")).to_contain_text('"mine"')
    assert "THEIRS-secret" not in await page.content()

    await page.select_option('[aria-label="Function"]', "fail")
    await page.fill('[aria-label="Arguments (JSON)"]', '{"message": "<b>not bold</b>"}')
    await page.click("text=Call")
    error = page.locator(".error")
    await expect(error).to_contain_text("<b>not bold</b>")
    await expect(error).to_contain_text("try a smaller one")
    await expect(error).to_contain_text("code P0001")
    await studio.screenshot("schema-rpc")


async def test_schema_page_is_for_admins(studio: Studio, client: Client) -> None:
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "Members only")
    member, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, member, "member")
    member_scoped = await sign_in(client, member["email"], org_id)
    refused = await client.get("/v1/db-schema", headers=bearer(member_scoped["access_token"]))
    assert (refused.status_code, refused.json()["code"]) == (403, "role_too_low")
    await studio.sign_in(member["email"])
    await studio.open("schema")
    await expect(studio.page.locator("main .empty")).to_contain_text("for org admins")
