"""Every studio page on a phone (390x844) and a desk (1280x800), full of data: no page is
wider than the screen, every action button can be reached (scrolled to within its own
container, visible and clickable), nothing reads "undefined", the navigation works on a
phone, the audit log shows readable diffs. Screenshots of every page at both sizes land
in .orgbase/screenshots/studio/layout-*.png."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, Page, expect

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import DELIVERING, Studio, studio_at
from tests.e2e.test_studio import PAGES as STUDIO_PAGES
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.data import make_platform_admin
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    save_settings,
    sign_in,
)
from tests.support.processes import serving
from tests.support.receivers import Answer, Receiver
from tests.support.stack import STATE_DIR

pytestmark = pytest.mark.slow

Client = AsyncTestClient[OrgbaseApp]
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
# Every page of the studio: those test_studio.py walks, and the account's own.
PAGES = (*STUDIO_PAGES, "sso", "security", "mail")
LONG = "a rather long title that a real table holds " * 3


@dataclass
class World:
    email: str
    org: str
    tokens: dict[str, Any]


@pytest.fixture(scope="module")
def layout_server(stack: LocalStack, settings: Settings) -> Iterator[str]:
    """Dev mode (the Mail page), mail to the stack's catcher, webhooks delivered; its links
    follow the port it serves."""
    del settings  # the test database, migrated
    env = gotrue_env(stack, **DELIVERING, ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN="true")
    with serving(env, log_file=STATE_DIR / "studio_layout_server.log") as base:
        yield base


@pytest.fixture
async def studio(browser: Browser, layout_server: str) -> AsyncIterator[Studio]:
    async with studio_at(browser, layout_server) as opened:
        yield opened


async def signed_in(studio: Studio, world: World) -> Page:
    """The world's user signed in, in the world's org."""
    await studio.sign_in(world.email)
    await studio.page.select_option("#org-switcher", world.org)
    return studio.page


async def make_world(client: Client, settings: Settings, base: str) -> World:
    """An org with something on every page: wide rows, members, invitations, keys,
    settings versions, a webhook with deliveries, documents, cache keys, audit events,
    more sessions than a page, and mail."""
    user, tokens = await new_user(client)
    await make_platform_admin(settings, user["id"])
    org = await create_org(client, tokens, "Layout Org")
    scoped = await sign_in(client, user["email"], org)
    headers = bearer(scoped["access_token"])
    # Members first: each joins by invitation (three audit events), and the audit page's
    # first page must still reach the row updates below.
    for role in ("admin", "member", "viewer"):
        other, _ = await new_user(client)
        await add_member(client, scoped, org, other, role)
    rows = [
        {"title": f"{LONG}{n}", "points": n, "tags": ["red", "green"], "data": {"n": n}}
        for n in range(30)
    ]
    written = await client.post("/v1/db/tasks", headers=headers, json=rows)
    assert written.status_code == 201, written.text
    changed = await client.patch(
        "/v1/db/tasks?points=lt.3", headers=headers, json={"title": "renamed", "points": 99}
    )
    assert changed.status_code == 204, changed.text
    for n in range(2):
        invited = await client.post(
            f"/v1/orgs/{org}/invitations",
            headers=headers,
            json={"email": f"invitee-{uuid.uuid4().hex[:6]}-{n}@example.com", "role": "member"},
        )
        assert invited.status_code == 201, invited.text
        key = await client.post(
            f"/v1/orgs/{org}/api-keys", headers=headers, json={"name": f"job {n}", "role": "member"}
        )
        assert key.status_code == 201, key.text
    for theme in ("dark", "light"):
        await save_settings(client, headers, org, {"theme": theme, "banner": LONG})
    docs = [{"name": f"doc {n}", "nested": {"n": n, "text": LONG}} for n in range(5)]
    assert (await client.post("/v1/docs/notes", headers=headers, json=docs)).status_code == 201
    for n in range(3):
        put = await client.put(f"/v1/kv/layout-{n}", headers=headers, json={"value": n})
        assert put.status_code in (200, 201), put.text
    for _ in range(12):  # more sessions than one page of the list
        await sign_in(client, user["email"], org)
    async with httpx.AsyncClient(base_url=base) as http:
        key = await http.get("/v1/auth/client-config")
        anon = {"apikey": key.json()["publishable_key"]}
        recovered = await http.post("/auth/v1/recover", headers=anon, json={"email": user["email"]})
        assert recovered.status_code == 200, recovered.text
    return World(user["email"], org, scoped)


async def webhook_with_deliveries(base: str, world: World, receiver: Receiver) -> None:
    """Through the dev-mode gateway: it may deliver to a receiver on loopback. Webhook
    destinations are set by an admin at aal2: another admin (the studio's user keeps
    signing in with a password alone)."""
    async with httpx.AsyncClient(base_url=base) as http:
        hooker, _ = await new_user(http)
        await add_member(http, world.tokens, world.org, hooker, "admin")
        strong = await admin_at_aal2(http, await sign_in(http, hooker["email"], world.org))
        http.headers.update(bearer(strong["access_token"]))
        made = await http.post(
            f"/v1/orgs/{world.org}/webhooks",
            json={"url": receiver.url, "events": ["db.*"], "description": LONG},
        )
        assert made.status_code == 201, made.text
        await http.post("/v1/db/tasks", json=[{"title": "hooked"}] * 3)
    await receiver.wait_for(3, within=30)


async def sideways(page: Page) -> int:
    overflow: int = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


async def unreachable_buttons(page: Page) -> list[str]:
    """Enabled buttons of the page that cannot be scrolled to and clicked."""
    missing = []
    buttons = page.locator("main button")
    for index in range(await buttons.count()):
        button = buttons.nth(index)
        if not await button.is_enabled():
            continue
        try:
            await button.scroll_into_view_if_needed(timeout=2000)
            await button.click(trial=True, timeout=2000)  # visible, stable, not covered
        except Exception:  # the reason is in the list: which button
            missing.append((await button.inner_text()).strip() or await button.inner_html())
            continue
        box = await button.bounding_box()
        width = page.viewport_size["width"] if page.viewport_size else 0
        if box is None or box["x"] < 0 or box["x"] + box["width"] > width + 1:
            missing.append((await button.inner_text()).strip())
    return missing


async def open_details(studio: Studio, page_id: str) -> None:
    """What a user opens on a page before acting: a table's rows, an endpoint's log."""
    page = studio.page
    if page_id == "database":
        await page.click('button[data-table="tasks"]')
    elif page_id == "webhooks":
        await (
            page.locator("#webhook-endpoints tbody tr")
            .first.get_by_role("button", name="Deliveries")
            .click()
        )
    elif page_id == "documents":
        await page.locator('button[data-collection="notes"]').click()
    await studio.settled()


async def open_page(studio: Studio, page_id: str, phone: bool) -> None:
    """The page, freshly loaded (nothing left open from before)."""
    page = studio.page
    await page.goto(f"{studio.base}/studio/#/{page_id}")
    await page.reload()
    await page.wait_for_selector("#org-switcher")
    if phone:
        toggle = page.locator("#nav-toggle")
        await expect(toggle).to_be_visible()
        await expect(toggle).to_contain_text(await current_label(page, page_id))
    await studio.settled()
    await open_details(studio, page_id)


async def current_label(page: Page, page_id: str) -> str:
    return (await page.locator(f'nav a[data-page="{page_id}"]').inner_text()).strip()


async def test_every_page_fits_a_phone_and_a_desk(
    studio: Studio, client: Client, settings: Settings
) -> None:
    world = await make_world(client, settings, studio.base)
    async with Receiver(Answer()) as receiver:
        await webhook_with_deliveries(studio.base, world, receiver)
    page = await signed_in(studio, world)
    problems: list[str] = []
    for size, viewport in (("phone", PHONE), ("desk", DESK)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        for page_id in PAGES:
            await open_page(studio, page_id, size == "phone")
            await studio.screenshot(f"layout-{page_id}-{size}")
            if (overflow := await sideways(page)) > 1:
                problems.append(f"{page_id} at {size}: {overflow} px wider than the screen")
            if missing := await unreachable_buttons(page):
                problems.append(f"{page_id} at {size}: buttons out of reach: {missing}")
            text = await page.locator("main").inner_text()
            if "undefined" in text or "NaN" in text:
                problems.append(f"{page_id} at {size}: shows undefined or NaN")
            if await page.locator("main .error").count():
                problems.append(f"{page_id} at {size}: shows an error")
    assert problems == [], "\n".join(problems)


async def test_the_phone_navigation_names_the_page_and_reaches_every_page(
    studio: Studio, client: Client, settings: Settings
) -> None:
    world = await make_world(client, settings, studio.base)
    page = studio.page
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await studio.sign_in(world.email)
    await open_page(studio, "usage", phone=True)
    toggle = page.locator("#nav-toggle")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    for page_id in PAGES:
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        link = page.locator(f'nav a[data-page="{page_id}"]')
        await link.scroll_into_view_if_needed()
        await link.click()
        await expect(
            page.locator(f'nav a[data-page="{page_id}"][aria-current="page"]')
        ).to_have_count(1)
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await expect(toggle).to_contain_text(await current_label(page, page_id))
        assert await sideways(page) <= 1


async def test_the_audit_log_shows_a_readable_diff(
    studio: Studio, client: Client, settings: Settings
) -> None:
    world = await make_world(client, settings, studio.base)
    page = await signed_in(studio, world)
    for viewport in (PHONE, DESK):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await open_page(studio, "audit", phone=viewport is PHONE)
        rows = page.locator("#audit-log tbody tr[data-event]")
        await expect(rows.first).to_be_visible()
        for index in range(await rows.count()):
            box = await rows.nth(index).bounding_box()
            assert box is not None
            assert box["height"] < 120, "an audit row stays one short line until opened"
        update = page.locator('#audit-log tr[data-action="row.update"]').first
        await update.get_by_role("button", name="Diff").click()
        diff = page.locator("#audit-log .diff").first
        # The changed columns only, old value struck, new value added.
        await expect(diff).to_be_visible()
        lines = [" ".join(line.split()) for line in (await diff.inner_text()).splitlines()]
        assert next(line for line in lines if line.startswith("-")).startswith('- "points": ')
        assert '+ "points": 99,' in lines
        assert '+ "title": "renamed"' in lines
        assert not [line for line in lines if "org_id" in line]
        assert await sideways(page) <= 1
        height = await page.evaluate("document.documentElement.scrollHeight")
        assert height < 8000, f"the audit log page is {height} px tall"


async def test_small_defects_stay_fixed(studio: Studio, client: Client, settings: Settings) -> None:
    world = await make_world(client, settings, studio.base)
    page = await signed_in(studio, world)

    # Settings of an org that never saved any: one account of its versions, never "no
    # version" beside "Version 1".
    fresh = await create_org(client, world.tokens, "Fresh Org")
    await page.reload()
    await page.wait_for_selector("#org-switcher")
    await page.select_option("#org-switcher", fresh)
    await studio.open("settings")
    await studio.settled()
    text = await page.locator("main").inner_text()
    assert "Version 1" in text
    assert "No version" not in text
    await page.select_option("#org-switcher", world.org)

    # Usage: the chart's time axis says which day, and its two ends differ.
    await studio.open("usage")
    await studio.settled()
    ends = page.locator("svg.chart").first.locator("text.axis-x")
    labels = [await ends.nth(i).text_content() for i in range(await ends.count())]
    assert len(labels) >= 2
    assert labels[0] != labels[-1]
    assert all(any(ch.isdigit() for ch in (label or "")) for label in labels)

    # The MFA checkbox sits on the line of its label.
    await studio.open("sso")
    await studio.settled()
    box = await page.locator("#mfa-required").bounding_box()
    label = await page.locator('label[for="mfa-required"]').bounding_box()
    assert box is not None
    assert label is not None
    assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 8

    # Sessions page by page.
    await studio.open("access")
    await studio.settled()
    sessions = page.locator('section[aria-label="My sessions"] tbody tr')
    await expect(sessions).to_have_count(10)
    await (
        page.locator('section[aria-label="My sessions"]')
        .get_by_role("button", name="Older")
        .click()
    )
    await expect(sessions.first).to_be_visible()
    assert 1 <= await sessions.count() <= 10

    # Mail without knowing the address: recent recipients are listed.
    await studio.open("mail")
    await studio.settled()
    await expect(page.locator("#mail-recipients")).to_contain_text(world.email)


async def test_adding_an_authenticator_twice_leaves_one_pending_factor(
    studio: Studio, client: Client, settings: Settings
) -> None:
    world = await make_world(client, settings, studio.base)
    page = studio.page
    await studio.sign_in(world.email)
    await studio.open("security")
    await studio.settled()
    for _ in range(2):
        await page.click("#enrol-totp")
        await expect(page.locator("#totp-qr")).to_be_visible()
    await page.reload()
    await page.wait_for_selector("#org-switcher")
    await studio.open("security")
    await studio.settled()
    await page.click("#enrol-totp")
    await expect(page.locator("#totp-qr")).to_be_visible()
    async with httpx.AsyncClient(base_url=studio.base) as http:
        config = (await http.get("/v1/auth/client-config")).json()
        me = await http.get(
            "/auth/v1/user",
            headers={
                "apikey": config["publishable_key"],
                **bearer(world.tokens["access_token"]),
            },
        )
    factors = me.json().get("factors") or []
    assert [f["status"] for f in factors] == ["unverified"], json.dumps(factors)
