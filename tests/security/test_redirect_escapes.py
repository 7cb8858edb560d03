"""``redirect_to`` escaping its allowed path prefix with percent-encoded dots.

With ``ORGBASE_AUTH_REDIRECT_URLS=http://localhost:4000/cb``, a literal ``/cb/../admin``
was refused but ``/cb/%2e%2e/admin`` and ``/cb/.%2E/admin`` were accepted, and browsers
resolve them to ``/admin`` (the session then lands in that page's fragment). The path is
now checked as a browser resolves it: dot segments, written or encoded, and encoded
slashes are refused on every route that takes ``redirect_to``. Attacked through a real
gateway process started with that allow list.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import unique_email
from tests.support.processes import serving
from tests.support.stack import STATE_DIR, server_env

ALLOWED = "http://localhost:4000/cb"
ESCAPES = [
    "/cb/%2e%2e/admin",
    "/cb/.%2E/admin",
    "/cb/%2E./admin",
    "/cb/%2e%2E",
    "/cb/%2e/../admin",
    "/cb%2f..%2fadmin",
    "/cb/..%2Fadmin",
    "/cb/%5c..%5cadmin",
    "/cb/x/%2e%2e/%2e%2e/admin",
]


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    del settings  # the test database, migrated
    env = {**server_env(stack), "ORGBASE_AUTH_REDIRECT_URLS": ALLOWED}
    with serving(env, log_file=STATE_DIR / "redirect_escapes.log") as base:
        yield base


def recover(gateway: str, stack: LocalStack, path: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/auth/v1/recover?redirect_to={quote('http://localhost:4000' + path, safe='')}",
        headers={"apikey": stack.secrets["publishable"]},
        json={"email": unique_email("redirect")},
        timeout=30,
    )


@pytest.mark.parametrize("path", ESCAPES)
def test_encoded_dot_segments_never_leave_the_prefix(
    gateway: str, stack: LocalStack, path: str
) -> None:
    answer = recover(gateway, stack, path)
    assert (answer.status_code, answer.json()["code"]) == (400, "redirect_not_allowed"), path
    link = httpx.get(
        f"{gateway}/auth/v1/verify",
        params={
            "token": "x" * 43,
            "type": "recovery",
            "redirect_to": "http://localhost:4000" + path,
        },
        headers={"apikey": stack.secrets["publishable"]},
        timeout=30,
    )
    assert (link.status_code, link.json()["code"]) == (400, "redirect_not_allowed"), path


def test_paths_below_the_prefix_still_go(gateway: str, stack: LocalStack) -> None:
    for path in ("/cb", "/cb/done", "/cb/a%2Db?x=%2e%2e", "/cb/file%2Ejson"):
        assert recover(gateway, stack, path).status_code == 200, path
