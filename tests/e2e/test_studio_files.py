"""The studio's Files page in Chromium: make a bucket, upload with progress, browse into
a folder, download, get a signed link, delete; names render as text; narrow screens
scroll the table, not the page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import FilePayload, expect

from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import NARROW, Studio
from tests.support.http import bearer, create_org, new_user, sign_in

pytestmark = pytest.mark.slow
Client = AsyncTestClient[OrgbaseApp]
XSS = "<img src=x onerror=alert(1)>.txt"


async def test_files_page_from_bucket_to_signed_link(studio: Studio, client: Client) -> None:
    user, tokens = await new_user(client)
    org = await create_org(client, tokens, "Files org")
    headers = bearer((await sign_in(client, user["email"], org))["access_token"])
    page = studio.page
    await studio.sign_in(user["email"])
    await studio.open("files")
    await studio.settled()
    bucket = f"docs-{uuid.uuid4().hex[:6]}"
    await page.fill("input[name=bucket-id]", bucket)
    await page.click("#files-new-bucket button[type=submit]")
    await expect(page.locator("#files-bucket")).to_have_value(bucket)
    # Something in a folder, and a name that would be markup, put there through the API.
    for name, body in (("reports/q1.txt", b"quarter one"), (XSS, b"x")):
        stored = await client.post(
            f"/storage/v1/object/{bucket}/{name}",
            headers={**headers, "content-type": "text/plain"},
            content=body,
        )
        assert stored.status_code == 200, stored.text
    # Upload through the page (with its progress bar) into the top folder.
    await studio.open("files")
    await studio.settled()
    upload: FilePayload = {
        "name": "hello.txt",
        "mimeType": "text/plain",
        "buffer": b"hello studio" * 1000,
    }
    await page.set_input_files("#files-upload", files=[upload])
    await page.click("#files-send")
    await expect(page.locator("#files-uploaded")).to_contain_text("Uploaded hello.txt")
    table = page.locator("#files-table")
    await expect(table.locator('tr[data-name="hello.txt"]')).to_be_visible()
    await expect(table.locator(f'tr[data-name="{XSS}"] td').first).to_have_text(XSS)
    assert await page.locator("img[src=x]").count() == 0
    # Into the folder, download, a signed link that works without a session.
    await page.click("text=reports/")
    row = page.locator('tr[data-name="reports/q1.txt"]')
    await expect(row).to_be_visible()
    async with page.expect_download() as fetched:
        await row.locator("text=Download").click()
    download = await fetched.value
    path = await download.path()
    assert path is not None
    assert path.read_bytes() == b"quarter one"
    await row.locator("text=Signed link").click()
    link = (await page.locator("#files-signed code").inner_text()).strip()
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(link)).content == b"quarter one"
    await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert overflow is False
    await studio.screenshot("files-narrow")
    await row.locator("text=Delete").click()
    await expect(row).to_have_count(0)
    listed = await client.post(
        f"/storage/v1/object/list/{bucket}", headers=headers, json={"prefix": "reports"}
    )
    assert listed.json() == []
    assert studio.errors == []
