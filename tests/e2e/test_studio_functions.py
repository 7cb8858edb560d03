"""The studio's Functions page in Chromium: the example functions with who may call them,
an invocation made from the page, and its line in the recent invocations with its log."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import Studio
from tests.support.http import create_org, new_user

pytestmark = pytest.mark.slow
Client = AsyncTestClient[OrgbaseApp]


async def test_functions_page_lists_invokes_and_logs(studio: Studio, client: Client) -> None:
    user, tokens = await new_user(client)
    org = await create_org(client, tokens, "Functions org")
    page = studio.page
    await studio.sign_in(user["email"])
    await studio.open("functions")
    await studio.settled()
    await expect(page.locator("td code", has_text="whoami")).to_be_visible()
    await expect(page.locator("td code", has_text="count_items")).to_be_visible()
    await page.select_option("#functions-try-name", "count_items")
    await page.click("#functions-try button[type=submit]")
    answer = page.locator("#functions-try-answer")
    await expect(answer).to_contain_text("200")
    await expect(answer).to_contain_text(org)
    await studio.open("overview")
    await studio.open("functions")
    await studio.settled()
    row = page.locator("#functions-invocations tbody tr").first
    await expect(row).to_contain_text("count_items")
    await row.click()
    await expect(page.locator("#functions-invocations tr.detail")).to_contain_text("items counted")
    await studio.screenshot("functions")
