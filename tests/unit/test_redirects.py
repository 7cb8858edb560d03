"""The one redirect check: what a link or a sign-in flow may send the browser back to."""

from __future__ import annotations

import pytest

from orgbase.auth.redirects import check_redirect, redirect_allowed
from orgbase.core.errors import Invalid
from orgbase.core.settings import AuthSettings

PUBLIC = "http://127.0.0.1:8000"
ALLOWED = ("https://app.example.test/app/",)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8000/studio/",
        "https://app.example.test/app/",
        "https://app.example.test/app/done?x=1#frag",
    ],
)
def test_the_deployment_and_the_allowed_prefixes(url: str) -> None:
    assert redirect_allowed(url, PUBLIC, ALLOWED)
    assert check_redirect(url, PUBLIC, ALLOWED) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[",
        "https://[zz]/",
        "https://[v7.zz]/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:8000@evil.example/",
        "https://app.example.test/application",
        "https://app.example.test/app/../admin",
        "https://evil.example/app/",
        "javascript:alert(1)",
        "//evil.example/",
        "http://127.0.0.1:8000/\\evil",
        "http://127.0.0.1:8000/a b",
        "http://127.0.0.1:8000/\x00",
        "http://127.0.0.1:8000/" + "a" * 2000,
    ],
)
def test_everything_else_is_a_400(url: str) -> None:
    assert not redirect_allowed(url, PUBLIC, ALLOWED)
    with pytest.raises(Invalid) as refused:
        check_redirect(url, PUBLIC, ALLOWED)
    assert refused.value.code == "redirect_not_allowed"


def test_no_redirect_is_none() -> None:
    assert check_redirect(None, PUBLIC, ALLOWED) is None
    assert check_redirect("", PUBLIC, ALLOWED) is None


@pytest.mark.parametrize("url", ["http://[::1", "ftp://x.test/", "no host", "http://a:99999/"])
def test_the_operator_list_must_parse(url: str) -> None:
    with pytest.raises(ValueError, match="redirect_urls"):
        AuthSettings(redirect_urls=(url,))
