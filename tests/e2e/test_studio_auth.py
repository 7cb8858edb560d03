"""The studio's account screens in headless chromium against a real gateway (dev mode,
mail to the stack's catcher): sign-up and confirmation with the mailed code, "forgot
password", TOTP enrolment with the QR code and the challenge at the next sign-in (with a
recovery code), the org's sign-in policy (SSO provider, domains) and "sign in with ..."."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, expect

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.e2e.conftest import WIDE, Studio
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.http import PASSWORD, admin_at_aal2, unique_email
from tests.support.mail import code_in, wait_for_mail
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR


@pytest.fixture(scope="module")
def auth_server(
    stack: LocalStack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    del settings
    port = free_port()
    providers = tmp_path_factory.mktemp("studio-oidc") / "providers.json"
    providers.write_text(
        json.dumps(
            [
                {
                    "name": "acme",
                    "label": "Acme ID",
                    "issuer": "https://id.acme.example",
                    "client_id": "studio",
                    "client_secret": "secret",
                }
            ]
        )
    )
    env = gotrue_env(
        stack,
        ORGBASE_TENANCY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        ORGBASE_AUTH_OIDC_PROVIDERS_FILE=str(providers),
    )
    process = start_server(env, port, log_file=STATE_DIR / "studio_auth_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture
async def studio(browser: Browser, auth_server: str) -> AsyncIterator[Studio]:
    context = await browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
    page = await context.new_page()
    opened = Studio(page=page, base=auth_server)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    await context.close()
    assert opened.errors == [], f"the page threw: {opened.errors}"


def confirmed_user(base: str, stack: LocalStack) -> str:
    """An account made and confirmed through the API."""
    email = unique_email("studio-auth")
    api = httpx.Client(base_url=base, headers={"apikey": stack.secrets["publishable"]})
    assert api.post("/auth/v1/signup", json={"email": email, "password": PASSWORD}).is_success
    code = code_in(wait_for_mail(base, email, "Confirm your email address"))
    body = {"type": "signup", "email": email, "token": code}
    assert api.post("/auth/v1/verify", json=body).is_success
    return email


async def test_sign_up_and_confirm_with_the_mailed_code(studio: Studio, auth_server: str) -> None:
    page = studio.page
    await page.goto(f"{auth_server}/studio/")
    provider = page.locator('a[data-provider="acme"]')
    await expect(provider).to_have_text("Sign in with Acme ID")
    assert "/auth/v1/authorize?provider=acme" in (await provider.get_attribute("href") or "")
    await page.click("#to-signup")
    email = unique_email("signup-ui")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("input[name=code]")
    await page.fill("input[name=code]", "000000")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("otp_expired")
    # (A wrong guess counts, the right code still works after one.)
    code = code_in(wait_for_mail(auth_server, email, "Confirm your email address"))
    await page.fill("input[name=code]", code)
    await page.click("button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("confirmed")
    await studio.sign_in(email)
    await expect(page.locator(".who").first).to_be_visible()


async def test_forgot_password(studio: Studio, auth_server: str, stack: LocalStack) -> None:
    email = confirmed_user(auth_server, stack)
    page = studio.page
    await page.goto(f"{auth_server}/studio/")
    await page.click("#to-forgot")
    await page.fill("input[name=email]", email)
    await page.click("button[type=submit]")
    await page.wait_for_selector("input[name=code]")
    code = code_in(wait_for_mail(auth_server, email, "Reset your password"))
    await page.fill("input[name=code]", code)
    await page.fill("input[name=password]", "a fresh passphrase 2026")
    await page.click("button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("password is changed")
    await studio.sign_in(email, "a fresh passphrase 2026")
    await expect(page.locator(".who").first).to_be_visible()


async def test_mfa_enrolment_with_qr_and_challenge_at_sign_in(
    studio: Studio, auth_server: str, stack: LocalStack
) -> None:
    email = confirmed_user(auth_server, stack)
    page = studio.page
    await studio.sign_in(email)
    await studio.open("security")
    await studio.settled()
    await page.click("#enrol-totp")
    await expect(page.locator("#totp-qr svg")).to_be_visible()
    secret = (await page.locator("#totp-secret").text_content() or "").strip()
    await page.fill("input[name=totp-code]", pyotp.TOTP(secret).now())
    await page.click("#enrol button[type=submit]")
    codes = page.locator("#recovery-codes li")
    await expect(codes).to_have_count(10)
    recovery = (await codes.first.text_content() or "").strip()
    await studio.screenshot("mfa-enrolled")

    # Sign out; signing in again asks for the second factor (a recovery code here: the
    # app's code of this 30 s window was used already).
    await page.click("text=Sign out")
    await page.wait_for_selector("input[name=password]")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=Two-step verification")
    await page.fill("input[name=code]", "123456")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("mfa_verification_failed")
    await page.fill("input[name=code]", recovery)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#org-switcher, .who")
    await studio.open("security")
    await expect(page.locator("text=aal2")).to_be_visible()


async def test_sign_in_policy_for_org_admins(
    studio: Studio, auth_server: str, stack: LocalStack
) -> None:
    email = confirmed_user(auth_server, stack)
    stack.secrets["publishable"]
    async with httpx.AsyncClient(base_url=auth_server) as api:
        signed_in = await api.post(
            "/v1/auth/token",
            json={"grant_type": "password", "email": email, "password": PASSWORD},
        )
        token = signed_in.json()["access_token"]
        created = await api.post(
            "/v1/orgs", headers={"Authorization": f"Bearer {token}"}, json={"name": "Policy org"}
        )
    assert created.status_code == 201
    page = studio.page
    await studio.sign_in(email)
    await studio.open("sso")
    await studio.settled()
    # Requiring MFA needs the admin's own second factor first.
    await page.check("#mfa-required")
    await page.click("text=Save >> nth=0")
    await expect(page.locator(".error")).to_contain_text("insufficient_aal")
    await page.click("text=Sign out")
    await page.wait_for_selector("input[name=password]")
    # The owner enrols a second factor (SSO is changed at aal2): the studio asks for it.
    async with httpx.AsyncClient(base_url=auth_server) as api:
        raised = await admin_at_aal2(api, signed_in.json())
    recovery = raised["recovery_codes"][0]
    await page.goto(f"{auth_server}/studio/")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=Two-step verification")
    await page.fill("input[name=code]", recovery)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#org-switcher, .who")
    await studio.open("sso")
    await studio.settled()
    await page.fill("input[name=issuer]", "http://127.0.0.1:1/issuer")
    await page.fill("input[name=client_id]", "corp-client")
    await page.fill("input[name=client_secret]", "corp-secret")
    await page.click("text=Save SSO")
    await expect(page.locator("#sso-status")).to_contain_text("http://127.0.0.1:1/issuer")
    await page.fill("input[name=domain]", "policy-corp.example")
    await page.click("text=Claim domain")
    await expect(page.locator("text=pending: publish its DNS record")).to_be_visible()
    await expect(page.locator("td code").first).to_contain_text(
        "TXT _orgbase-challenge.policy-corp.example"
    )
    # No such record in DNS: the studio says so (the gateway asked DNS itself).
    await page.click('button[data-verify="policy-corp.example"]')
    await expect(page.locator(".error")).to_contain_text(
        re.compile("domain_not_proven|dns_unavailable")
    )
    await studio.screenshot("sign-in-policy")


async def test_dev_mail_page_shows_the_catchers_mail(
    studio: Studio, auth_server: str, stack: LocalStack
) -> None:
    email = confirmed_user(auth_server, stack)
    await studio.sign_in(email)
    await studio.open("mail")
    await expect(studio.page.locator("#mail-list article").first).to_contain_text(
        "Confirm your email address"
    )
    await expect(studio.page.locator("#mail-list pre").first).to_contain_text("Your code:")
