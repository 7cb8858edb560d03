"""Headless Debian chromium driven by Playwright against a real gateway process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import ROOT, STATE_DIR, server_env

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / ".orgbase" / "screenshots" / "studio"
# Chromium's own background traffic is refused by these machines' closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
# The webhooks page's tests need deliveries to their loopback receivers, soon.
DELIVERING = {
    "ORGBASE_WEBHOOKS_ENABLED": "true",
    "ORGBASE_WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
    "ORGBASE_WEBHOOKS_POLL_SECONDS": "0.1",
}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session, before any I/O
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def studio_server(stack: LocalStack, settings: Settings) -> Iterator[str]:
    """The studio's own gateway process, delivering webhooks. Not the session's live_server:
    a delivering gateway delivers every org's webhooks in the shared test database, so it
    lives only as long as these tests (see TEST_OVERRIDES in tests/support/stack.py)."""
    port = free_port()
    env = server_env(stack, **DELIVERING)
    process = start_server(env, port, log_file=STATE_DIR / "studio_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@dataclass
class Studio:
    """One browser context (its own cookies) on the studio, with its page errors."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    async def sign_in(self, email: str, password: str = PASSWORD) -> None:
        await self.page.goto(f"{self.base}/studio/")
        await self.page.fill("input[name=email]", email)
        await self.page.fill("input[name=password]", password)
        await self.page.click("button[type=submit]")
        await self.page.wait_for_selector("#org-switcher, .who")

    async def sign_in_at_aal2(self, email: str, code: str, password: str = PASSWORD) -> None:
        """Sign in with the password, then the second factor's ``code`` (a TOTP code or a
        recovery code): a session at aal2, as security settings need."""
        await self.page.goto(f"{self.base}/studio/")
        await self.page.fill("input[name=email]", email)
        await self.page.fill("input[name=password]", password)
        await self.page.click("button[type=submit]")
        await self.page.wait_for_selector("text=Two-step verification")
        await self.page.fill("input[name=code]", code)
        await self.page.click("button[type=submit]")
        await self.page.wait_for_selector("#org-switcher, .who")

    async def open(self, page_id: str) -> None:
        await self.page.goto(f"{self.base}/studio/#/{page_id}")
        # Attached, not visible: on a phone the navigation waits behind its menu button.
        await self.page.wait_for_selector(
            f'nav a[data-page="{page_id}"][aria-current="page"]', state="attached"
        )

    async def settled(self) -> None:
        """No spinner left on the page."""
        # A locator, not a JS predicate: the studio's CSP forbids eval, Playwright's too.
        await expect(self.page.locator(".spinner")).to_have_count(0, timeout=15000)

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


@asynccontextmanager
async def studio_at(browser: Browser, base: str) -> AsyncIterator[Studio]:
    """A fresh browser context on the studio at ``base``; fails if the page threw."""
    context = await browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
    page = await context.new_page()
    opened = Studio(page=page, base=base)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    # confirm() before deletes and revocations: the user says yes.
    page.on("dialog", lambda dialog: asyncio.ensure_future(_accept(dialog)))
    yield opened
    await context.close()
    assert opened.errors == [], f"the page threw: {opened.errors}"


@pytest.fixture
async def studio(browser: Browser, studio_server: str) -> AsyncIterator[Studio]:
    async with studio_at(browser, studio_server) as opened:
        yield opened
