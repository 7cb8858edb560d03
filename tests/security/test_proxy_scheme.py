"""Behind a TLS proxy: the browser speaks https to the proxy, the proxy http to us, and
says so with ``X-Forwarded-Proto: https`` (the shipped nginx config sends it). From a
proxy in ``ORGBASE_HTTP_TRUSTED_PROXIES`` the gateway takes it: session cookies get
``Secure`` (never sent over plain http) and answers carry HSTS. From anyone else the
header means nothing (a client cannot make us believe it came over TLS)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD, unique_email
from tests.support.processes import serving
from tests.support.stack import STATE_DIR, server_env

HTTPS = {"x-forwarded-proto": "https"}


@pytest.fixture(scope="module")
def gateways(stack: LocalStack, settings: Settings) -> Iterator[tuple[str, str]]:
    """(a gateway that trusts loopback as its proxy, one that trusts another address)."""
    del settings  # the test database, migrated
    trusting = server_env(stack, ORGBASE_HTTP_TRUSTED_PROXIES="127.0.0.1/32")
    other = server_env(stack, ORGBASE_HTTP_TRUSTED_PROXIES="10.9.9.9/32")
    with (
        serving(trusting, log_file=STATE_DIR / "proxy_trusting.log") as trusted,
        serving(other, log_file=STATE_DIR / "proxy_untrusted.log") as untrusted,
    ):
        yield trusted, untrusted


def _browser_sign_in(gateway: str, headers: dict[str, str]) -> list[str]:
    """A browser sign-in through ``gateway``: its Set-Cookie headers."""
    email = unique_email("proxied")
    made = httpx.post(f"{gateway}/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert made.status_code == 201, made.text
    answer = httpx.post(
        f"{gateway}/v1/auth/browser/sign-in",
        headers={"content-type": "application/json", **headers},
        content=json.dumps({"email": email, "password": PASSWORD}),
    )
    assert answer.status_code == 200, answer.text
    return answer.headers.get_list("set-cookie")


def test_a_trusted_proxys_https_gives_secure_cookies_and_hsts(gateways: tuple[str, str]) -> None:
    trusted, _ = gateways
    live = httpx.get(f"{trusted}/health/live", headers=HTTPS)
    assert live.headers["strict-transport-security"].startswith("max-age=")
    cookies = _browser_sign_in(trusted, HTTPS)
    assert {c.split("=", 1)[0] for c in cookies} == {"orgbase_refresh", "orgbase_csrf"}
    for cookie in cookies:
        assert "secure" in cookie.lower().replace(" ", "").split(";"), cookie
    # The same proxy over plain http: neither.
    plain = httpx.get(f"{trusted}/health/live", headers={"x-forwarded-proto": "http"})
    assert "strict-transport-security" not in plain.headers
    for cookie in _browser_sign_in(trusted, {"x-forwarded-proto": "http"}):
        assert "secure" not in cookie.lower(), cookie


def test_an_untrusted_peers_header_is_ignored(gateways: tuple[str, str]) -> None:
    _, untrusted = gateways
    live = httpx.get(f"{untrusted}/health/live", headers=HTTPS)
    assert "strict-transport-security" not in live.headers
    for cookie in _browser_sign_in(untrusted, HTTPS):
        assert "secure" not in cookie.lower(), cookie
