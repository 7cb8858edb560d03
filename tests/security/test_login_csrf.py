"""Login CSRF, three ways, attacked through a real gateway, a real OpenID provider and
Debian's chromium: the victim's browser must never end up signed in as the attacker
(whatever they enter would then go to the attacker's org).

1. The OIDC callback: the attacker runs a sign-in of their own up to the provider's
   answer and makes the victim's browser open that callback URL. The state is bound to
   the browser that started the flow (a cookie set at /authorize): refused.
2. The studio adopted any ``#access_token=`` in its URL, even over a session: now only
   a flow its own tab started, and never over a session without asking.
3. ``POST /v1/auth/browser/sign-in`` took ``text/plain``, form and untyped bodies: a
   cross-site form replaced the victim's cookies. Now JSON only, from our origins.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, Page, expect

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.e2e.conftest import WIDE, browser  # noqa: F401 - the session's chromium
from tests.integration.test_oidc import to_callback
from tests.support.http import PASSWORD, unique_email
from tests.support.oidc_provider import (
    LocalProvider,
    gateway_with_provider,
)
from tests.support.sso import Api, walk

CLIENT_ID = "csrf-test-client"
CLIENT_SECRET = "csrf-test-client-secret-long-enough"
Client = AsyncTestClient[OrgbaseApp]


@dataclass
class Setup:
    provider: LocalProvider
    gateway: str
    api: Api


@pytest.fixture(scope="module")
def setup(stack: LocalStack, settings: Settings) -> Iterator[Setup]:
    del settings  # the test database, migrated
    with gateway_with_provider(
        stack,
        36,
        "csrf",
        (CLIENT_ID, CLIENT_SECRET),
        operator_provider={"name": "acme", "label": "Acme ID"},
    ) as (provider, gateway):
        yield Setup(provider, gateway, Api(gateway, stack.secrets["publishable"]))


def attackers_callback(setup: Setup, sub: str) -> tuple[str, httpx.Client]:
    """The attacker signs in with their own provider account, up to (not into) our
    callback: the callback URL, and the attacker's browser."""
    setup.provider.account(sub, unique_email("attacker"))
    setup.provider.next_login(sub)
    return to_callback(setup.gateway)


def test_an_attackers_callback_url_signs_no_other_browser_in(setup: Setup) -> None:
    callback, attacker = attackers_callback(setup, "csrf-attacker-1")
    victim = httpx.Client(timeout=10)  # the victim's browser: no cookie of that flow
    answer = victim.get(callback)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "oidc_browser_mismatch"
    assert "access_token" not in answer.headers.get("location", "")
    # Refused before the state is used: only the browser that started it finishes it.
    finished = attacker.get(callback)
    assert finished.status_code == 303, finished.text
    assert "access_token=" in finished.headers["location"]


@pytest.mark.parametrize("answer", ["error=access_denied", "code=forged"])
def test_a_callback_without_the_browsers_cookie_consumes_nothing(setup: Setup, answer: str) -> None:
    """Anyone who learns a sign-in's state (a referrer, a log) called the callback with it
    and no cookie: an error answer was followed (303 ``oidc_denied``) and either answer
    used the state up, so the user's own browser then got 400: their sign-in cancelled.
    The browser's cookie is checked first, and a request without it takes nothing."""
    setup.provider.account("csrf-cancel-" + answer[:4], unique_email("cancel"))
    setup.provider.next_login("csrf-cancel-" + answer[:4])
    callback, own = to_callback(setup.gateway)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    forged = f"{setup.gateway}/auth/v1/callback?state={state}&{answer}"
    refused = httpx.Client(timeout=10).get(forged)
    assert (refused.status_code, refused.json()["code"]) == (403, "oidc_browser_mismatch")
    assert "location" not in refused.headers
    finished = own.get(callback)
    assert finished.status_code == 303, finished.text
    assert "access_token=" in finished.headers["location"]


def test_the_starting_browser_finishes_and_the_cookie_is_strict_enough(setup: Setup) -> None:
    setup.provider.account("csrf-own-1", unique_email("own"))
    setup.provider.next_login("csrf-own-1")
    own = httpx.Client(timeout=10)
    started = own.get(
        f"{setup.gateway}/auth/v1/authorize",
        params={"provider": "acme", "redirect_to": "http://app.example.test/"},
    )
    [cookie] = started.headers.get_list("set-cookie")
    assert cookie.startswith("orgbase_oidc_")
    for attribute in ("HttpOnly", "Path=/auth/v1/callback", "SameSite=lax"):
        assert attribute.lower() in cookie.lower(), cookie
    finished = walk(own, started.headers["location"], setup.gateway)
    assert finished.status_code == 303, finished.text
    assert "access_token=" in finished.headers["location"]


def test_a_forwarded_sso_start_is_bound_to_the_browser_that_opens_it(setup: Setup) -> None:
    """``POST /auth/v1/sso`` (and linking) answer a URL of our /authorize: the state and
    its cookie are made in the browser that opens it, not in the caller of the API."""
    account = setup.api.password_session(setup.api.sign_up())
    link = setup.api.call(
        "GET",
        "/auth/v1/user/identities/authorize",
        account["access_token"],
        params={"provider": "acme", "redirect_to": "http://app.example.test/"},
    )
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url.startswith(f"{setup.gateway}/auth/v1/authorize?")
    assert "link_ticket=" in url
    opened = httpx.Client(timeout=10).get(url)
    assert opened.status_code == 303
    # The ticket is single use: the same URL again starts nothing.
    again = httpx.Client(timeout=10).get(url)
    assert (again.status_code, again.json()["code"]) == (400, "oidc_state_invalid")


# -- 3. the browser sign-in -------------------------------------------------------------


async def test_browser_sign_in_takes_json_from_our_origins_only(
    client: Client, settings: Settings
) -> None:
    email = unique_email("csrf-victim")
    made = await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert made.status_code == 201
    body = json.dumps({"email": email, "password": PASSWORD})
    path = "/v1/auth/browser/sign-in"
    forms = [
        ({"content-type": "text/plain"}, body),  # <form enctype="text/plain">
        ({"content-type": "application/x-www-form-urlencoded"}, f"email={email}"),
        ({"content-type": "multipart/form-data; boundary=x"}, body),
        ({}, body),
    ]
    for headers, content in forms:
        client.cookies.clear()
        answer = await client.post(path, headers=headers, content=content)
        assert (answer.status_code, answer.json()["code"]) == (415, "content_type_not_json"), (
            headers
        )
        assert not answer.headers.get_list("set-cookie")
    json_type = {"content-type": "application/json"}
    for cross_site in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
    ):
        answer = await client.post(path, headers=json_type | cross_site, content=body)
        assert (answer.status_code, answer.json()["code"]) == (403, "origin_not_allowed")
        assert not answer.headers.get_list("set-cookie")
    # Our own pages (same origin), and callers that are not browsers (no Origin), sign in.
    for own in ({"origin": "http://testserver.local"}, {}):
        answer = await client.post(path, headers=json_type | own, content=body)
        assert answer.status_code == 200, (own, answer.text)
    del settings


# -- 2. the studio ----------------------------------------------------------------------


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811 - the imported fixture
    context = await browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == [], f"the page threw: {errors}"


async def _studio_sign_in(page: Page, gateway: str, email: str) -> None:
    await page.goto(f"{gateway}/studio/")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("div.who")).to_contain_text(email)


def _fragment_of(setup: Setup, email: str) -> str:
    """A session of ``email`` as a provider's redirect would carry it."""
    tokens = setup.api.password_session(email)
    return f"#access_token={tokens['access_token']}&expires_in=900&token_type=bearer&type=oauth"


async def test_the_studio_never_adopts_a_session_it_did_not_ask_for(
    page: Page, setup: Setup
) -> None:
    victim, attacker = setup.api.sign_up(), setup.api.sign_up()
    forged = _fragment_of(setup, attacker)
    # Signed in: the attacker's link (opened from another site: a new tab, the same
    # cookies) leaves the victim signed in as the victim.
    await _studio_sign_in(page, setup.gateway, victim)
    opened = await page.context.new_page()
    await opened.goto(f"{setup.gateway}/studio/{forged}")
    await expect(opened.locator("div.who")).to_contain_text(victim)
    assert "access_token" not in opened.url
    # A fresh browser: the link signs nobody in (not even with a made-up flow value).
    context = await page.context.browser.new_context()  # type: ignore[union-attr]
    fresh = await context.new_page()
    await fresh.goto(f"{setup.gateway}/studio/?flow=guess{forged}")
    await expect(fresh.locator("input[name=password]")).to_be_visible()
    await expect(fresh.locator("body")).to_contain_text("did not start was ignored")
    await expect(fresh.locator("div.who")).to_have_count(0)
    await context.close()


async def test_the_studio_adopts_its_own_flow_and_asks_before_replacing_a_session(
    page: Page, setup: Setup
) -> None:
    email = unique_email("studio-own")
    setup.provider.account("studio-own-1", email)
    # Its own flow ("Sign in with Acme ID"), in a tab with no session: adopted.
    setup.provider.next_login("studio-own-1")
    await page.goto(f"{setup.gateway}/studio/")
    await page.click('a[data-provider="acme"]')
    await expect(page.locator("div.who")).to_contain_text(email)
    assert "flow=" not in page.url
    assert "access_token" not in page.url

    # Signed in (with a password) as someone else, a flow of this tab asks first.
    other = setup.api.sign_up()
    for choice, expected in (("#keep-session", other), ("#switch-session", email)):
        await _studio_sign_in(page, setup.gateway, other)
        setup.provider.next_login("studio-own-1")
        # (The provider buttons are on the sign-in page: start the flow as they do.)
        start = await page.evaluate(
            "import('/studio/js/provider_flow.js').then((m) => m.startUrl('acme'))"
        )
        await page.goto(f"{setup.gateway}{start}")
        await expect(page.locator(choice)).to_be_visible()
        await page.click(choice)
        await expect(page.locator("div.who")).to_contain_text(expected)
        await page.context.clear_cookies()
